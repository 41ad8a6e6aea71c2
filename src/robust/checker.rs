//! Checkers. Linearizability of each key as a register (put, get, compare-and-swap,
//! delete), with the Wing–Gong search as refined by Lowe (and used by Porcupine): walk
//! the history's call/return events in time order, try to linearize a pending call whose
//! result fits the model, backtrack on dead ends, and remember (linearized set, state)
//! pairs already explored. Operations of unknown outcome never return: they may take
//! effect at any point after their call, or never. On a violation the failing key's
//! history is shrunk greedily to a small history that still fails.

use std::collections::HashSet;

use crate::robust::history::{Op, OpKind, Outcome};

/// Most search steps for one key before the verdict is "unknown".
pub const MAX_CHECK_STEPS: u64 = 5_000_000;

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
        (OpKind::Put { value }, Outcome::Done | Outcome::Unknown(_)) => Some(Some(value.clone())),
        (OpKind::Delete, Outcome::Done | Outcome::Unknown(_)) => Some(None),
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

#[derive(Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    time: u64,
}

/// Checks one key's operations (all on the same key), starting from an absent key.
pub fn check_key(ops: &[Op]) -> Verdict {
    // Reads of unknown outcome have no effect and constrain nothing.
    let ops: Vec<&Op> = ops
        .iter()
        .filter(|o| !(o.is_read() && matches!(o.outcome, Outcome::Unknown(_))))
        .collect();
    let n = ops.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    let mut events: Vec<Event> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        events.push(Event {
            op: i,
            is_call: true,
            time: o.invoke_ns,
        });
        // An operation of unknown outcome never returns: it need not be linearized.
        if let Some(t) = o.complete_ns {
            events.push(Event {
                op: i,
                is_call: false,
                time: t,
            });
        }
    }
    // Calls before returns at equal times (overlap is the conservative reading).
    events.sort_by_key(|e| (e.time, !e.is_call));

    let mut linearized = vec![false; n];
    let mut state: State = None;
    // Stack of (event position, op linearized there, state before).
    let mut stack: Vec<(usize, usize, State)> = Vec::new();
    let mut seen: HashSet<(Vec<bool>, State)> = HashSet::new();
    let mut pos = 0usize;
    let mut steps = 0u64;
    loop {
        steps += 1;
        if steps > MAX_CHECK_STEPS {
            return Verdict::Unknown;
        }
        // Skip events of operations already linearized.
        while pos < events.len()
            && events
                .get(pos)
                .is_some_and(|e| linearized.get(e.op) == Some(&true))
        {
            pos += 1;
        }
        let Some(ev) = events.get(pos).copied() else {
            return Verdict::Linearizable;
        };
        let mut advanced = false;
        if ev.is_call {
            // Try linearizing this call (and later ones) in event order from here.
            let op = ops.get(ev.op).copied();
            if let Some(op) = op {
                if let Some(next) = step(&state, op) {
                    let mut lin = linearized.clone();
                    if let Some(slot) = lin.get_mut(ev.op) {
                        *slot = true;
                    }
                    if seen.insert((lin.clone(), next.clone())) {
                        stack.push((pos, ev.op, state.clone()));
                        linearized = lin;
                        state = next;
                        pos = 0;
                        advanced = true;
                    }
                }
            }
            if !advanced {
                pos += 1;
                continue;
            }
        } else {
            // A return whose operation is not linearized yet: backtrack.
            let Some((p, op, prev)) = stack.pop() else {
                return Verdict::Violation;
            };
            if let Some(slot) = linearized.get_mut(op) {
                *slot = false;
            }
            state = prev;
            pos = p + 1;
        }
    }
}

/// Checks every key; returns the keys whose histories are not linearizable (or could
/// not be decided) with their verdicts.
pub fn check(history: &[Op]) -> Vec<(String, Verdict)> {
    let mut keys: Vec<&str> = history.iter().map(|o| o.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut bad = Vec::new();
    for k in keys {
        let ops: Vec<Op> = history.iter().filter(|o| o.key == k).cloned().collect();
        let v = check_key(&ops);
        if v != Verdict::Linearizable {
            bad.push((k.to_string(), v));
        }
    }
    bad
}

/// Greedily removes operations while the history still fails: a small counterexample.
pub fn shrink(ops: &[Op]) -> Vec<Op> {
    let mut cur: Vec<Op> = ops.to_vec();
    let mut i = 0;
    while i < cur.len() {
        let mut candidate = cur.clone();
        candidate.remove(i);
        if check_key(&candidate) == Verdict::Violation {
            cur = candidate;
        } else {
            i += 1;
        }
    }
    cur
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
        // Shrinking keeps a failing core.
        let mut h = vec![put(1, "a", 0, 10), put(2, "b", 11, 20)];
        for i in 0..10 {
            h.push(get(10 + i, Some("b"), 21 + i * 10, 25 + i * 10));
        }
        h.push(get(99, Some("a"), 500, 510));
        let small = shrink(&h);
        assert_eq!(check_key(&small), Verdict::Violation);
        assert!(small.len() <= 3, "{small:?}");
    }
}
