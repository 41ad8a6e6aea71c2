//! Checkers. Linearizability of each key as a register (put, get, compare-and-swap,
//! delete), with the Wing–Gong search as refined by Lowe (and used by Porcupine): walk
//! the history's call/return events in time order, try to linearize a pending call whose
//! result fits the model, backtrack on dead ends, and remember (linearized set, state)
//! pairs already explored. Operations of unknown outcome never return: they may take
//! effect at any point after their call, or never. On a violation the failing key's
//! history is shrunk greedily to a small history that still fails.

use std::collections::{HashMap, HashSet};

use crate::robust::history::{Op, OpKind, Outcome};

/// Most search steps for one key before the verdict is "unknown".
pub const MAX_CHECK_STEPS: u64 = 20_000_000;
/// Most checks one shrink makes, and the steps each may take.
pub const MAX_SHRINK_CHECKS: usize = 400;
pub const MAX_SHRINK_STEPS: u64 = 2_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    Violation,
    /// The search ran out of steps.
    Unknown,
}

type State = Option<String>;

/// Applies `op` to `state`: the next state, if the recorded outcome is possible.
fn step(state: &State, op: &Op) -> Option<State> {
    match (&op.kind, &op.outcome) {
        (OpKind::Put { value }, Outcome::Done | Outcome::Unknown(_) | Outcome::MayHappen) => {
            Some(Some(value.clone()))
        }
        (OpKind::Delete, Outcome::Done | Outcome::Unknown(_) | Outcome::MayHappen) => Some(None),
        (OpKind::Get, Outcome::Read(v)) => (v == state).then(|| state.clone()),
        (OpKind::Get, Outcome::Unknown(_)) => Some(state.clone()),
        (OpKind::Cas { expect, value }, Outcome::Swapped(true)) => {
            (state.as_deref() == Some(expect.as_str())).then(|| Some(value.clone()))
        }
        (OpKind::Cas { expect, .. }, Outcome::Swapped(false)) => {
            (state.as_deref() != Some(expect.as_str())).then(|| state.clone())
        }
        (OpKind::Cas { expect, value }, Outcome::Unknown(_)) => {
            // Took effect only if it could have.
            if state.as_deref() == Some(expect.as_str()) {
                Some(Some(value.clone()))
            } else {
                Some(state.clone())
            }
        }
        _ => None,
    }
}

/// The call and return events of one key's history, in time order, as a doubly linked
/// list: linearizing an operation lifts its call and return out in O(1), backtracking
/// puts them back (Lowe's refinement of Wing–Gong, as in Porcupine).
struct Events {
    /// For each event: the operation, and whether it is the call.
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// For a call: its return event (none for operations of unknown outcome).
    ret: Vec<Option<usize>>,
    /// Links; index `len` is the head sentinel.
    next: Vec<Option<usize>>,
    prev: Vec<Option<usize>>,
}

impl Events {
    fn new(ops: &[&Op]) -> Events {
        // (time, returns after calls at equal times: overlap is the conservative reading,
        // op, is_call)
        let mut order: Vec<(u64, bool, usize, bool)> = Vec::with_capacity(2 * ops.len());
        for (i, o) in ops.iter().enumerate() {
            order.push((o.invoke_ns, false, i, true));
            // An operation of unknown outcome never returns: it need not be linearized.
            // Nor need one that may not happen (its deadline is checked on its own).
            if let (Some(t), false) = (o.complete_ns, o.outcome == Outcome::MayHappen) {
                order.push((t, true, i, false));
            }
        }
        order.sort_unstable();
        let len = order.len();
        let mut ev = Events {
            op: order.iter().map(|e| e.2).collect(),
            is_call: order.iter().map(|e| e.3).collect(),
            ret: vec![None; len],
            // Event i links to i + 1; the sentinel (index len) to the first event.
            next: (0..len)
                .map(|i| (i + 1 < len).then_some(i + 1))
                .chain(std::iter::once((len > 0).then_some(0)))
                .collect(),
            prev: (0..len)
                .map(|i| Some(i.checked_sub(1).unwrap_or(len)))
                .chain(std::iter::once(None))
                .collect(),
        };
        let mut call_of = vec![0usize; ops.len()];
        for (pos, e) in order.iter().enumerate() {
            if let Some(c) = call_of.get_mut(e.2) {
                if e.3 {
                    *c = pos;
                }
            }
        }
        for (pos, e) in order.iter().enumerate() {
            if !e.3 {
                if let Some(r) = call_of.get(e.2).and_then(|c| ev.ret.get_mut(*c)) {
                    *r = Some(pos);
                }
            }
        }
        ev
    }

    fn head(&self) -> usize {
        self.op.len()
    }

    fn first(&self) -> Option<usize> {
        self.next.get(self.head()).copied().flatten()
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (
            self.prev.get(i).copied().flatten(),
            self.next.get(i).copied().flatten(),
        );
        if let Some(slot) = p.and_then(|p| self.next.get_mut(p)) {
            *slot = n;
        }
        if let Some(slot) = n.and_then(|n| self.prev.get_mut(n)) {
            *slot = p;
        }
    }

    /// Puts `i` back between the neighbours it had when unlinked (undo in reverse order).
    fn relink(&mut self, i: usize) {
        let (p, n) = (
            self.prev.get(i).copied().flatten(),
            self.next.get(i).copied().flatten(),
        );
        if let Some(slot) = p.and_then(|p| self.next.get_mut(p)) {
            *slot = Some(i);
        }
        if let Some(slot) = n.and_then(|n| self.prev.get_mut(n)) {
            *slot = Some(i);
        }
    }

    /// Removes a call and its return.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Some(r) = self.ret.get(call).copied().flatten() {
            self.unlink(r);
        }
    }

    fn unlift(&mut self, call: usize) {
        if let Some(r) = self.ret.get(call).copied().flatten() {
            self.relink(r);
        }
        self.relink(call);
    }
}

/// Checks one key's operations (all on the same key), starting from an absent key,
/// within `max_steps` search steps.
pub fn check_key_within(ops: &[Op], max_steps: u64) -> Verdict {
    // Reads of unknown outcome have no effect and constrain nothing. An operation that
    // may happen matters only to a read that saw its value while it was in flight (once
    // it completes, its partner write has taken effect after it), or, when no other
    // operation writes its value, to a read that saw that value at any time.
    let mut writers: HashMap<&str, usize> = HashMap::new();
    let mut reads_of: HashMap<&str, Vec<&Op>> = HashMap::new();
    for o in ops {
        if let Some(v) = written_value(o) {
            *writers.entry(v).or_default() += 1;
        }
        if let Outcome::Read(Some(v)) = &o.outcome {
            reads_of.entry(v.as_str()).or_default().push(o);
        }
    }
    let seen = |m: &Op| {
        let Some(value) = written_value(m) else {
            return false;
        };
        let unique = writers.get(value) == Some(&1);
        reads_of.get(value).is_some_and(|reads| {
            reads.iter().any(|r| {
                (unique || r.invoke_ns <= m.complete_ns.unwrap_or(u64::MAX))
                    && r.complete_ns.unwrap_or(u64::MAX) >= m.invoke_ns
            })
        })
    };
    let ops: Vec<&Op> = ops
        .iter()
        .filter(|o| !(o.is_read() && matches!(o.outcome, Outcome::Unknown(_))))
        .filter(|o| o.outcome != Outcome::MayHappen || seen(o))
        .collect();
    let mut ev = Events::new(&ops);
    let mut returns_left = ev.ret.iter().filter(|r| r.is_some()).count();
    let index_of: HashMap<u64, usize> = ops.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    let is_set =
        |bits: &[u64], i: usize| bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0);
    // The latest invocation among linearized operations: an operation that may happen
    // must take effect before anything invoked after its completion.
    let mut max_invoke = 0u64;
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut state: State = None;
    // Calls linearized so far, with the state and the latest invocation before each.
    let mut stack: Vec<(usize, State, u64)> = Vec::new();
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut cursor = ev.first();
    let mut steps = 0u64;
    // Done when every operation that returned is linearized; those of unknown outcome
    // may stay out.
    while returns_left > 0 {
        steps += 1;
        if steps > max_steps {
            return Verdict::Unknown;
        }
        let Some(e) = cursor else {
            // invariant: a return is still linked while returns_left > 0, and the scan
            // stops at the first return; reaching the end means the list is inconsistent.
            return Verdict::Unknown;
        };
        let (Some(&i), Some(&is_call)) = (ev.op.get(e), ev.is_call.get(e)) else {
            return Verdict::Unknown;
        };
        if is_call {
            let allowed = ops.get(i).is_some_and(|op| {
                let in_time = op.outcome != Outcome::MayHappen
                    || op.complete_ns.is_some_and(|t| t >= max_invoke);
                let partner_done = op
                    .before
                    .and_then(|id| index_of.get(&id))
                    .is_some_and(|&p| is_set(&linearized, p));
                in_time && !partner_done
            });
            let next_state = ops
                .get(i)
                .filter(|_| allowed)
                .and_then(|op| step(&state, op));
            if let Some(next_state) = next_state {
                let mut lin = linearized.clone();
                if let Some(w) = lin.get_mut(i / 64) {
                    *w |= 1 << (i % 64);
                }
                if seen.insert((lin.clone(), next_state.clone())) {
                    stack.push((e, std::mem::replace(&mut state, next_state), max_invoke));
                    max_invoke = max_invoke.max(ops.get(i).map_or(0, |o| o.invoke_ns));
                    linearized = lin;
                    if ev.ret.get(e).copied().flatten().is_some() {
                        returns_left -= 1;
                    }
                    ev.lift(e);
                    cursor = ev.first();
                    continue;
                }
            }
            cursor = ev.next.get(e).copied().flatten();
        } else {
            // A return whose call is not linearized yet: undo the last choice.
            let Some((call, before, invoke_before)) = stack.pop() else {
                return Verdict::Violation;
            };
            let Some(&ci) = ev.op.get(call) else {
                return Verdict::Unknown;
            };
            if let Some(w) = linearized.get_mut(ci / 64) {
                *w &= !(1 << (ci % 64));
            }
            if ev.ret.get(call).copied().flatten().is_some() {
                returns_left += 1;
            }
            state = before;
            max_invoke = invoke_before;
            ev.unlift(call);
            cursor = ev.next.get(call).copied().flatten();
        }
    }
    Verdict::Linearizable
}

/// Checks one key's operations with the default step budget.
pub fn check_key(ops: &[Op]) -> Verdict {
    check_key_within(ops, MAX_CHECK_STEPS)
}

/// A key whose history failed: the verdict, and for a violation a small failing history.
#[derive(Debug, Clone)]
pub struct Finding {
    pub key: String,
    pub verdict: Verdict,
    pub evidence: Vec<Op>,
}

/// Checks every key; returns the keys whose histories are not linearizable (or could
/// not be decided).
pub fn check(history: &[Op]) -> Vec<Finding> {
    let mut keys: Vec<&str> = history.iter().map(|o| o.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut bad = Vec::new();
    for k in keys {
        let mut ops: Vec<Op> = history.iter().filter(|o| o.key == k).cloned().collect();
        allow_writes_lost_to_unlinks(&mut ops);
        let (verdict, evidence) = match stale_read(&ops) {
            Some(evidence) => (Verdict::Violation, evidence),
            None => match check_key(&ops) {
                Verdict::Violation => (Verdict::Violation, shrink(&ops)),
                v => (v, Vec::new()),
            },
        };
        if verdict != Verdict::Linearizable {
            bad.push(Finding {
                key: k.to_string(),
                verdict,
                evidence,
            });
        }
    }
    bad
}

/// A whole-file write through a mount opens the file, writes, and closes it. When the
/// file is unlinked in between (the open found it before the unlink took effect), the
/// write goes to a file that no longer has a name and is lost with it, as on any POSIX
/// file system, although close(2) succeeds. So such a write that overlaps a removal of
/// its key (one that may have happened) may take effect within its interval, or not at
/// all. Writes through the KV client stay as they are.
pub fn allow_writes_lost_to_unlinks(ops: &mut [Op]) {
    // Removals by invocation, with the latest completion among those invoked so far
    // (unknown outcome: never completes).
    let mut removals: Vec<(u64, u64)> = ops
        .iter()
        .filter(|o| {
            o.kind == OpKind::Delete && matches!(o.outcome, Outcome::Done | Outcome::Unknown(_))
        })
        .map(|o| (o.invoke_ns, o.complete_ns.unwrap_or(u64::MAX)))
        .collect();
    removals.sort_unstable();
    let mut latest_done = 0u64;
    for r in &mut removals {
        latest_done = latest_done.max(r.1);
        r.1 = latest_done;
    }
    for o in ops.iter_mut() {
        let (true, OpKind::Put { .. }, Outcome::Done, Some(done)) =
            (o.via_file, &o.kind, &o.outcome, o.complete_ns)
        else {
            continue;
        };
        let invoked_before_done = removals.partition_point(|r| r.0 <= done);
        let overlaps = invoked_before_done
            .checked_sub(1)
            .and_then(|i| removals.get(i))
            .is_some_and(|r| r.1 >= o.invoke_ns);
        if overlaps {
            o.outcome = Outcome::MayHappen;
        }
    }
}

/// The write that produced `value` (values are unique per run), if it took effect for sure.
fn is_definite_write(op: &Op) -> bool {
    matches!(
        (&op.kind, &op.outcome),
        (OpKind::Put { .. } | OpKind::Delete, Outcome::Done)
            | (OpKind::Cas { .. }, Outcome::Swapped(true))
    )
}

fn written_value(op: &Op) -> Option<&str> {
    match &op.kind {
        OpKind::Put { value } | OpKind::Cas { value, .. } => Some(value),
        _ => None,
    }
}

/// A fast, exact test for the most common violation, which the search would need very
/// long to prove on a long history: a read that returns a value `v` although a later
/// write completed before the read began: `write(v)` returned, then another write was
/// invoked and returned, then the read was invoked and saw `v`. Written values are
/// unique, so no other write could have restored `v`. Also a read of a value nobody
/// wrote. Returns the failing operations.
pub fn stale_read(ops: &[Op]) -> Option<Vec<Op>> {
    // Definite writes sorted by invocation, with the earliest completion of any write
    // invoked at or after each position.
    let mut writes: Vec<&Op> = ops.iter().filter(|o| is_definite_write(o)).collect();
    writes.sort_by_key(|o| o.invoke_ns);
    let mut earliest_done_after: Vec<(u64, usize)> = vec![(u64::MAX, 0); writes.len() + 1];
    for i in (0..writes.len()).rev() {
        let done = writes
            .get(i)
            .and_then(|w| w.complete_ns)
            .unwrap_or(u64::MAX);
        let later = earliest_done_after
            .get(i + 1)
            .copied()
            .unwrap_or((u64::MAX, 0));
        if let Some(slot) = earliest_done_after.get_mut(i) {
            *slot = if done < later.0 { (done, i) } else { later };
        }
    }
    // Values written by exactly one operation (the empty file is written by many).
    let mut by_value: HashMap<&str, Option<&Op>> = Default::default();
    for o in ops {
        if let Some(v) = written_value(o) {
            by_value
                .entry(v)
                .and_modify(|w| *w = None)
                .or_insert(Some(o));
        }
    }
    for read in ops {
        let (Outcome::Read(Some(v)), Some(read_done)) = (&read.outcome, read.complete_ns) else {
            continue;
        };
        let w = match by_value.get(v.as_str()) {
            None => return Some(vec![read.clone()]),
            Some(None) => continue,
            Some(Some(w)) => w,
        };
        if w.invoke_ns > read_done {
            return Some(vec![read.clone(), (*w).clone()]);
        }
        let Some(w_done) = w.complete_ns else {
            continue;
        };
        let first_after = writes.partition_point(|o| o.invoke_ns <= w_done);
        if let Some(&(done, i)) = earliest_done_after.get(first_after) {
            if done < read.invoke_ns {
                if let Some(over) = writes.get(i) {
                    return Some(vec![(*w).clone(), (*over).clone(), read.clone()]);
                }
            }
        }
    }
    None
}

/// Operations that only observe the register (reads, failed compare-and-swaps): removing
/// them from a linearizable history leaves it linearizable, so a failing history with
/// fewer of them is still evidence of the same bug.
fn observes_only(op: &Op) -> bool {
    matches!(op.outcome, Outcome::Read(_) | Outcome::Swapped(false))
}

/// Shrinks a failing history to a small one that still fails, removing only operations
/// that observe (see [`observes_only`]), in halving chunks (delta debugging), within
/// `MAX_SHRINK_CHECKS` checks of `MAX_SHRINK_STEPS` steps each.
pub fn shrink(ops: &[Op]) -> Vec<Op> {
    let mut cur: Vec<Op> = ops.to_vec();
    let mut checks = 0usize;
    let mut chunk = cur
        .iter()
        .filter(|o| observes_only(o))
        .count()
        .div_ceil(2)
        .max(1);
    loop {
        let mut removed_any = false;
        let mut start = 0usize;
        loop {
            // The `chunk` observing operations from the `start`-th one on.
            let positions: Vec<usize> = cur
                .iter()
                .enumerate()
                .filter(|(_, o)| observes_only(o))
                .map(|(i, _)| i)
                .skip(start)
                .take(chunk)
                .collect();
            if positions.is_empty() || checks >= MAX_SHRINK_CHECKS {
                break;
            }
            checks += 1;
            let candidate: Vec<Op> = cur
                .iter()
                .enumerate()
                .filter(|(i, _)| positions.binary_search(i).is_err())
                .map(|(_, o)| o.clone())
                .collect();
            if check_key_within(&candidate, MAX_SHRINK_STEPS) == Verdict::Violation {
                cur = candidate;
                removed_any = true;
            } else {
                start += chunk;
            }
        }
        if checks >= MAX_SHRINK_CHECKS || (chunk == 1 && !removed_any) {
            return cur;
        }
        chunk = chunk.div_ceil(2).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, kind: OpKind, t: (u64, Option<u64>), outcome: Outcome) -> Op {
        Op {
            id,
            client: id,
            key: "k".into(),
            kind,
            invoke_ns: t.0,
            complete_ns: t.1,
            outcome,
            before: None,
            via_file: false,
        }
    }
    fn put(id: u64, v: &str, a: u64, b: u64) -> Op {
        op(
            id,
            OpKind::Put { value: v.into() },
            (a, Some(b)),
            Outcome::Done,
        )
    }
    fn get(id: u64, v: Option<&str>, a: u64, b: u64) -> Op {
        op(
            id,
            OpKind::Get,
            (a, Some(b)),
            Outcome::Read(v.map(str::to_string)),
        )
    }

    #[test]
    fn accepts_linearizable_and_rejects_stale_reads() {
        // Sequential: put a, get a, put b, get b.
        let h = vec![
            put(1, "a", 0, 10),
            get(2, Some("a"), 11, 20),
            put(3, "b", 21, 30),
            get(4, Some("b"), 31, 40),
        ];
        assert_eq!(check_key(&h), Verdict::Linearizable);
        // A read after a completed write returns the old value: stale.
        let h = vec![
            put(1, "a", 0, 10),
            put(2, "b", 11, 20),
            get(3, Some("a"), 21, 30),
        ];
        assert_eq!(check_key(&h), Verdict::Violation);
        // The same read overlapping the second write is fine.
        let h = vec![
            put(1, "a", 0, 10),
            put(2, "b", 11, 30),
            get(3, Some("a"), 21, 25),
        ];
        assert_eq!(check_key(&h), Verdict::Linearizable);
        // Reading a value nobody wrote.
        let h = vec![put(1, "a", 0, 10), get(2, Some("z"), 11, 20)];
        assert_eq!(check_key(&h), Verdict::Violation);
        // A read of "absent" after a write that completed: a lost write.
        let h = vec![put(1, "a", 0, 10), get(2, None, 11, 20)];
        assert_eq!(check_key(&h), Verdict::Violation);
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_happen() {
        let unknown = op(
            2,
            OpKind::Put { value: "b".into() },
            (11, None),
            Outcome::Unknown("timeout".into()),
        );
        // It may have happened...
        let h = vec![
            put(1, "a", 0, 10),
            unknown.clone(),
            get(3, Some("b"), 50, 60),
        ];
        assert_eq!(check_key(&h), Verdict::Linearizable);
        // ...or not.
        let h = vec![
            put(1, "a", 0, 10),
            unknown.clone(),
            get(3, Some("a"), 50, 60),
        ];
        assert_eq!(check_key(&h), Verdict::Linearizable);
        // But not before it was invoked.
        let h = vec![put(1, "a", 0, 10), get(3, Some("b"), 1, 5), unknown];
        assert_eq!(check_key(&h), Verdict::Violation);
    }

    #[test]
    fn compare_and_swap_and_shrinking() {
        let cas = |id, e: &str, v: &str, a, b, ok| {
            op(
                id,
                OpKind::Cas {
                    expect: e.into(),
                    value: v.into(),
                },
                (a, Some(b)),
                Outcome::Swapped(ok),
            )
        };
        let h = vec![
            put(1, "a", 0, 10),
            cas(2, "a", "b", 11, 20, true),
            cas(3, "a", "c", 21, 30, false),
            get(4, Some("b"), 31, 40),
        ];
        assert_eq!(check_key(&h), Verdict::Linearizable);
        // Two successful swaps from the same value, one after the other: impossible.
        let h = vec![
            put(1, "a", 0, 10),
            cas(2, "a", "b", 11, 20, true),
            cas(3, "a", "c", 21, 30, true),
        ];
        assert_eq!(check_key(&h), Verdict::Violation);
        // Shrinking keeps a failing core: the two writes and the stale read.
        let mut h = vec![put(1, "a", 0, 10), put(2, "b", 11, 20)];
        for i in 0..10 {
            h.push(get(10 + i, Some("b"), 21 + i * 10, 25 + i * 10));
        }
        h.push(get(99, Some("a"), 500, 510));
        let small = shrink(&h);
        assert_eq!(check_key(&small), Verdict::Violation);
        assert_eq!(
            small.iter().map(|o| o.id).collect::<Vec<_>>(),
            vec![1, 2, 99]
        );
    }

    /// A long history with heavy overlap, made by a real register (each operation takes
    /// effect at a point inside its interval), passes quickly; the same history with one
    /// read made stale fails.
    #[test]
    fn long_overlapping_histories() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut state: Option<String> = None;
        let mut h = Vec::new();
        for i in 0..3000u64 {
            let at = i * 100;
            let (a, b) = (
                at - rng.gen_range(0..at.min(800) + 1),
                at + rng.gen_range(0..800),
            );
            let o = match rng.gen_range(0..100) {
                0..=39 => {
                    let v = format!("v{i}");
                    state = Some(v.clone());
                    put(i, &v, a, b)
                }
                40..=98 => get(i, state.as_deref(), a, b),
                _ => {
                    state = None;
                    op(
                        i,
                        OpKind::Delete,
                        (a, None),
                        Outcome::Unknown("lost".into()),
                    )
                }
            };
            h.push(o);
        }
        assert_eq!(check_key(&h), Verdict::Linearizable);
        // A read well after a completed write returns a value from before it: the
        // search alone would take very long to prove it; the stale-read test finds it
        // and gives the three operations that show it.
        let stale = h
            .iter()
            .position(|o| o.id > 2000 && matches!(&o.outcome, Outcome::Read(Some(_))))
            .unwrap();
        h[stale].outcome = Outcome::Read(Some("v1".into()));
        let found = check(&h);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].verdict, Verdict::Violation);
        let small = &found[0].evidence;
        assert_eq!(small.len(), 3, "{small:?}");
        assert_eq!(check_key(small), Verdict::Violation);
    }

    /// A whole-file write may expose the empty file inside its interval, before its own
    /// value, and at no other time.
    #[test]
    fn empty_file_during_a_write() {
        let write = |id, v: &str, a, b| {
            let w = put(id, v, a, b);
            let mut empty = op(
                id + 1000,
                OpKind::Put {
                    value: String::new(),
                },
                (a, Some(b)),
                Outcome::MayHappen,
            );
            empty.before = Some(id);
            vec![w, empty]
        };
        let mut h = vec![put(1, "a", 0, 10)];
        h.extend(write(2, "b", 20, 40));
        h.push(get(3, Some(""), 25, 30));
        h.push(get(4, Some("b"), 41, 45));
        assert_eq!(check_key(&h), Verdict::Linearizable);
        // Never after the write completed...
        let mut late = h.clone();
        late.push(get(5, Some(""), 50, 60));
        assert_eq!(check_key(&late), Verdict::Violation);
        // ...nor after the write's own value, inside its interval.
        let mut after = vec![put(1, "a", 0, 10)];
        after.extend(write(2, "b", 20, 40));
        after.push(get(3, Some("b"), 21, 24));
        after.push(get(4, Some(""), 30, 35));
        assert_eq!(check_key(&after), Verdict::Violation);
        // And it may not happen at all.
        let mut none = vec![put(1, "a", 0, 10)];
        none.extend(write(2, "b", 20, 40));
        none.push(get(3, Some("a"), 21, 24));
        none.push(get(4, Some("b"), 41, 45));
        assert_eq!(check_key(&none), Verdict::Linearizable);
    }

    /// A write through a mount that overlaps an unlink of its file may be lost (it went
    /// to the unlinked file); no other acknowledged write may be.
    #[test]
    fn file_writes_lost_to_unlinks() {
        let unlink = |id, a, b| op(id, OpKind::Delete, (a, Some(b)), Outcome::Done);
        let file_put = |id, v: &str, a, b| Op {
            via_file: true,
            ..put(id, v, a, b)
        };
        let verdict = |mut h: Vec<Op>| {
            allow_writes_lost_to_unlinks(&mut h);
            check_key(&h)
        };
        // Written through a mount while the file was being unlinked (the unlink has
        // taken effect before the write began: a read saw the file gone), then never seen.
        let lost = vec![
            put(1, "a", 0, 10),
            unlink(2, 20, 50),
            get(7, None, 22, 28),
            file_put(3, "b", 30, 40),
            get(4, None, 60, 70),
        ];
        assert_eq!(verdict(lost.clone()), Verdict::Linearizable);
        // If it did take effect, it did so within its interval.
        let mut seen = lost.clone();
        seen[4] = get(4, Some("b"), 60, 70);
        assert_eq!(verdict(seen.clone()), Verdict::Linearizable);
        seen.push(put(5, "c", 80, 90));
        seen.push(get(6, Some("b"), 100, 110));
        assert_eq!(verdict(seen), Verdict::Violation);
        // The same through the KV client is a lost write.
        let mut kv = lost.clone();
        kv[3].via_file = false;
        assert_eq!(verdict(kv), Verdict::Violation);
        // So is a file write that no unlink overlaps.
        let mut apart = lost;
        apart[1] = unlink(2, 11, 29);
        assert_eq!(verdict(apart), Verdict::Violation);
    }
}
