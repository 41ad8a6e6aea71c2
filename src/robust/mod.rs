//! The robustness harness: a cluster of real `aspen node` processes behind
//! fault-injecting proxies, concurrent clients whose every operation is recorded, a seeded
//! schedule of faults (kill -9 and restart, SIGSTOP pauses, partitions, whole-cluster
//! crash), and checkers (linearizability per key, durability, watch streams, hook
//! delivery, topics). Each run
//! writes a report directory. The `aspen-robustness` binary drives it.

pub mod checker;
pub mod cluster;
pub mod fs_load;
pub mod history;
pub mod hook_check;
pub mod proxy;
pub mod run;
pub mod topics_load;
