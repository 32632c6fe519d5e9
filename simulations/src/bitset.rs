//! [`NodeSet`]: a fixed-size set of node indices as a bit vector. Partitions, link rules and
//! every node's belief row are node sets, so membership tests are one shift and one mask and
//! whole-row comparisons are word-wise. Iteration is in index order, so it is deterministic.

/// A set of node indices `0..len`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeSet {
    words: Vec<u64>,
    len: usize,
}

impl NodeSet {
    /// The empty set over `len` nodes.
    pub fn new(len: usize) -> NodeSet {
        NodeSet { words: vec![0; len.div_ceil(64)], len }
    }

    /// The set of every node `0..len`.
    pub fn full(len: usize) -> NodeSet {
        let mut set = NodeSet::new(len);
        for i in 0..len {
            set.insert(i);
        }
        set
    }

    /// The set holding exactly `members` (indices must be below `len`).
    pub fn from_indices(len: usize, members: impl IntoIterator<Item = usize>) -> NodeSet {
        let mut set = NodeSet::new(len);
        for i in members {
            set.insert(i);
        }
        set
    }

    /// The number of nodes the set ranges over.
    pub fn capacity(&self) -> usize {
        self.len
    }

    /// True if `i` is in the set.
    #[inline]
    pub fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// Adds `i`; returns true if it was not there.
    #[inline]
    pub fn insert(&mut self, i: usize) -> bool {
        match self.words.get_mut(i / 64) {
            Some(w) => {
                let bit = 1u64 << (i % 64);
                let added = *w & bit == 0;
                *w |= bit;
                added
            }
            None => false,
        }
    }

    /// Removes `i`; returns true if it was there.
    #[inline]
    pub fn remove(&mut self, i: usize) -> bool {
        match self.words.get_mut(i / 64) {
            Some(w) => {
                let bit = 1u64 << (i % 64);
                let removed = *w & bit != 0;
                *w &= !bit;
                removed
            }
            None => false,
        }
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    /// Number of members.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True if the set has no member.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &NodeSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Keeps only members also in `other`.
    pub fn intersect_with(&mut self, other: &NodeSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    /// Removes every member of `other`.
    pub fn subtract(&mut self, other: &NodeSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    /// Number of indices in exactly one of `self` and `other`.
    pub fn count_differences(&self, other: &NodeSet) -> usize {
        self.words.iter().zip(&other.words).map(|(a, b)| (a ^ b).count_ones() as usize).sum()
    }

    /// True if the sets share a member.
    pub fn intersects(&self, other: &NodeSet) -> bool {
        self.words.iter().zip(&other.words).any(|(a, b)| a & b != 0)
    }

    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &word)| {
            let mut w = word;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_agree_with_a_naive_model() {
        let mut a = NodeSet::from_indices(130, [0, 5, 64, 129]);
        let b = NodeSet::from_indices(130, [5, 6, 129]);
        assert_eq!(a.count(), 4);
        assert!(a.contains(64) && !a.contains(63));
        assert_eq!(a.count_differences(&b), 3);
        assert!(a.intersects(&b));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 5, 64, 129]);
        a.subtract(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 64]);
        a.union_with(&b);
        assert_eq!(a.count(), 5);
        a.intersect_with(&b);
        assert_eq!(a, b);
        assert!(a.remove(5) && !a.remove(5));
        assert!(a.insert(7) && !a.insert(7));
        assert!(!a.insert(1000), "out of range is ignored");
        a.clear();
        assert!(a.is_empty());
        assert_eq!(NodeSet::full(70).count(), 70);
    }
}
