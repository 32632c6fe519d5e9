//! Who believes whom up: one bit per (observer, member), kept from the `MemberUp` and
//! `MemberDown` events the cores publish — the same events the daemons log — and compared
//! with the truth (the member runs and the two can reach each other both ways).
//!
//! The comparison is kept incrementally: each running observer's number of wrong bits, and
//! their total, so "has the cluster converged?" is one comparison after every event. When the
//! truth itself changes (a node starts or stops, a partition is made or healed) the counts are
//! recomputed word-wise over the rows. Reads nothing but what it is given.

use crate::bitset::NodeSet;
use crate::network::Network;

/// The belief matrix and its distance from the truth.
#[derive(Debug, Clone)]
pub struct Beliefs {
    up: Vec<NodeSet>,
    up_count: Vec<u32>,
    seen_up_by: Vec<u32>,
    mismatch: Vec<u32>,
    total_mismatch: u64,
    truth_row: NodeSet,
    unreachable: NodeSet,
}

impl Beliefs {
    /// `n` nodes believing nothing.
    pub fn new(n: usize) -> Beliefs {
        Beliefs {
            up: (0..n).map(|_| NodeSet::new(n)).collect(),
            up_count: vec![0; n],
            seen_up_by: vec![0; n],
            mismatch: vec![0; n],
            total_mismatch: 0,
            truth_row: NodeSet::new(n),
            unreachable: NodeSet::new(n),
        }
    }

    /// True if `x` believes `y` up.
    #[inline]
    pub fn believes_up(&self, x: usize, y: usize) -> bool {
        self.up[x].contains(y)
    }

    /// Members `x` believes up, itself included (as `show cluster membership` lists itself).
    #[inline]
    pub fn up_count(&self, x: usize) -> usize {
        self.up_count[x] as usize + 1
    }

    /// Number of running observers that believe `y` up.
    #[inline]
    pub fn seen_up_by(&self, y: usize) -> usize {
        self.seen_up_by[y] as usize
    }

    /// The set `x` believes up (not including `x`).
    pub fn row(&self, x: usize) -> &NodeSet {
        &self.up[x]
    }

    /// True if every running node believes exactly the running nodes it can reach up.
    #[inline]
    pub fn converged(&self) -> bool {
        self.total_mismatch == 0
    }

    /// Number of wrong (observer, member) bits over running observers.
    pub fn total_mismatch(&self) -> u64 {
        self.total_mismatch
    }

    /// Records that running node `x` now believes `y` up (or down). `truth` says whether `y`
    /// runs and is reachable from `x`. Returns true if the belief changed.
    pub fn set(&mut self, x: usize, y: usize, up: bool, truth: bool) -> bool {
        if x == y {
            return false;
        }
        let changed = if up { self.up[x].insert(y) } else { self.up[x].remove(y) };
        if changed {
            if up {
                self.up_count[x] += 1;
                self.seen_up_by[y] += 1;
            } else {
                self.up_count[x] -= 1;
                self.seen_up_by[y] -= 1;
            }
            if up == truth {
                self.mismatch[x] -= 1;
                self.total_mismatch -= 1;
            } else {
                self.mismatch[x] += 1;
                self.total_mismatch += 1;
            }
        }
        changed
    }

    /// Forgets everything `x` believed (it stopped, or a new run starts knowing nothing).
    pub fn clear_row(&mut self, x: usize) {
        for y in self.up[x].iter() {
            self.seen_up_by[y] -= 1;
        }
        self.up[x].clear();
        self.up_count[x] = 0;
        self.total_mismatch -= u64::from(self.mismatch[x]);
        self.mismatch[x] = 0;
    }

    /// Recomputes every running observer's distance from the truth after the truth changed.
    pub fn recompute(&mut self, running: &NodeSet, net: &Network) {
        self.total_mismatch = 0;
        for x in 0..self.up.len() {
            if !running.contains(x) {
                self.mismatch[x] = 0;
                continue;
            }
            self.truth_row.clone_from(running);
            self.truth_row.remove(x);
            if net.has_cuts() {
                net.unreachable_from(x, &mut self.unreachable);
                self.truth_row.subtract(&self.unreachable);
            }
            let m = self.up[x].count_differences(&self.truth_row) as u32;
            self.mismatch[x] = m;
            self.total_mismatch += u64::from(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::LinkParams;
    use crate::time::SimTime;

    #[test]
    fn convergence_follows_beliefs_and_truth() {
        let mut net = Network::new(3, LinkParams::default());
        let running = NodeSet::full(3);
        let mut b = Beliefs::new(3);
        b.recompute(&running, &net);
        assert_eq!(b.total_mismatch(), 6, "nobody knows anybody yet");
        for x in 0..3 {
            for y in 0..3 {
                b.set(x, y, true, true);
            }
        }
        assert!(b.converged());
        assert_eq!(b.up_count(0), 3);
        assert_eq!(b.seen_up_by(2), 2);

        net.isolate(&NodeSet::from_indices(3, [2]), SimTime::ZERO);
        b.recompute(&running, &net);
        assert_eq!(b.total_mismatch(), 4, "0 and 1 still see 2 up, 2 sees both up");
        b.set(0, 2, false, false);
        b.set(1, 2, false, false);
        b.set(2, 0, false, false);
        b.set(2, 1, false, false);
        assert!(b.converged());
        assert_eq!(b.seen_up_by(2), 0);

        b.clear_row(2);
        assert!(b.converged());
        assert!(!b.set(1, 1, true, false), "self is never recorded");
    }
}
