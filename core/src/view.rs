//! Positional diffs of live views: what a UI list applies blindly.
//!
//! A live view ([`crate::Timeline::watch_dialogs`], [`crate::Timeline::watch_timeline`]) is an
//! ordered list: its snapshot comes first, then one [`VectorDiff`] per change of the list,
//! by position, in order. Applying them to the snapshot ([`VectorDiff::apply`]) gives what a
//! fresh read of the same list would give at that moment: nothing twice, nothing missed.
//! The shape is matrix-rust-sdk's (eyeball-im) `VectorDiff`.

/// One change of a live view's list, by position (indices as of just before this change).
#[derive(Debug, Clone, PartialEq)]
pub enum VectorDiff<T> {
    /// Append `value`.
    PushBack {
        /// The new last item.
        value: T,
    },
    /// Put `value` first.
    PushFront {
        /// The new first item.
        value: T,
    },
    /// Insert `value` at `index` (the items from there on move one down).
    Insert {
        /// Where `value` goes (0 ..= the current length).
        index: usize,
        /// The new item.
        value: T,
    },
    /// Replace the item at `index` with `value` (same item, changed).
    Set {
        /// The position of the changed item.
        index: usize,
        /// Its new value.
        value: T,
    },
    /// Remove the item at `index`.
    Remove {
        /// The position of the removed item.
        index: usize,
    },
    /// Replace the whole list (many changes at once).
    Reset {
        /// The whole new list.
        values: Vec<T>,
    },
}

impl<T> VectorDiff<T> {
    /// Applies this change to `list`. Errors (a list that did not follow the view):
    /// an index out of range, named in the message.
    pub fn apply(self, list: &mut Vec<T>) -> Result<(), String> {
        let n = list.len();
        match self {
            Self::PushBack { value } => list.push(value),
            Self::PushFront { value } => list.insert(0, value),
            Self::Insert { index, value } if index <= n => list.insert(index, value),
            Self::Set { index, value } if index < n => list[index] = value,
            Self::Remove { index } if index < n => {
                list.remove(index);
            }
            Self::Reset { values } => *list = values,
            Self::Insert { index, .. } | Self::Set { index, .. } | Self::Remove { index } => {
                return Err(format!("index {index} out of range (length {n})"))
            }
        }
        Ok(())
    }

    /// The item this change adds or changes (`None` for `Remove` and `Reset`).
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::PushBack { value }
            | Self::PushFront { value }
            | Self::Insert { value, .. }
            | Self::Set { value, .. } => Some(value),
            Self::Remove { .. } | Self::Reset { .. } => None,
        }
    }

    /// The same change with every item converted (for bindings).
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> VectorDiff<U> {
        match self {
            Self::PushBack { value } => VectorDiff::PushBack { value: f(value) },
            Self::PushFront { value } => VectorDiff::PushFront { value: f(value) },
            Self::Insert { index, value } => VectorDiff::Insert {
                index,
                value: f(value),
            },
            Self::Set { index, value } => VectorDiff::Set {
                index,
                value: f(value),
            },
            Self::Remove { index } => VectorDiff::Remove { index },
            Self::Reset { values } => VectorDiff::Reset {
                values: values.into_iter().map(f).collect(),
            },
        }
    }
}

/// Past this many single changes for one write, a view gets one `Reset` instead.
const RESET_OVER: usize = 32;

/// The changes that turn `old` into `new` (both ordered, ids unique in each): items of
/// `old` that keep their relative order in `new` stay (a longest such run), changed ones
/// among them are `Set`; the others are removed (from the back) and inserted (from the
/// front). Many changes at once become one `Reset`.
pub(crate) fn diff<T: Clone + PartialEq, K: Eq + std::hash::Hash>(
    old: &[T],
    new: &[T],
    id: impl Fn(&T) -> K,
) -> Vec<VectorDiff<T>> {
    use std::collections::HashMap;
    let at_new: HashMap<K, usize> = new.iter().enumerate().map(|(i, x)| (id(x), i)).collect();
    // Positions in `new` of the old items, in old order (None = gone).
    let pos: Vec<Option<usize>> = old.iter().map(|x| at_new.get(&id(x)).copied()).collect();
    let keep = longest_increasing(&pos);
    let mut out = Vec::new();
    // Removals, from the back so that earlier indices stay valid.
    for i in (0..old.len()).rev() {
        if !keep[i] {
            out.push(VectorDiff::Remove { index: i });
        }
    }
    // Insertions in ascending position of `new`: each lands at its final index.
    let mut kept_new = vec![false; new.len()];
    for (i, p) in pos.iter().enumerate() {
        if keep[i] {
            if let Some(p) = p {
                kept_new[*p] = true;
            }
        }
    }
    let mut len = old.len() - out.len();
    for (j, x) in new.iter().enumerate() {
        if kept_new[j] {
            continue;
        }
        out.push(if j == len {
            VectorDiff::PushBack { value: x.clone() }
        } else if j == 0 {
            VectorDiff::PushFront { value: x.clone() }
        } else {
            VectorDiff::Insert {
                index: j,
                value: x.clone(),
            }
        });
        len += 1;
    }
    // Kept items that changed: in place, at their final index.
    for (i, p) in pos.iter().enumerate() {
        if let (true, Some(p)) = (keep[i], p) {
            if old[i] != new[*p] {
                out.push(VectorDiff::Set {
                    index: *p,
                    value: new[*p].clone(),
                });
            }
        }
    }
    if out.len() > RESET_OVER && out.len() > new.len() / 2 {
        return vec![VectorDiff::Reset {
            values: new.to_vec(),
        }];
    }
    out
}

/// Marks a longest strictly increasing run of the `Some` positions (patience sorting).
fn longest_increasing(pos: &[Option<usize>]) -> Vec<bool> {
    // tails[k] = index into `pos` of the smallest tail of a run of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; pos.len()];
    for (i, p) in pos.iter().enumerate() {
        let Some(p) = *p else { continue };
        let k = tails.partition_point(|&t| pos[t].is_some_and(|q| q < p));
        prev[i] = k.checked_sub(1).map(|k| tails[k]);
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut keep = vec![false; pos.len()];
    let mut at = tails.last().copied();
    while let Some(i) = at {
        keep[i] = true;
        at = prev[i];
    }
    keep
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn replay(old: &[(u32, u32)], new: &[(u32, u32)]) -> Vec<VectorDiff<(u32, u32)>> {
        let d = diff(old, new, |x| x.0);
        let mut list = old.to_vec();
        for c in d.clone() {
            c.apply(&mut list).unwrap();
        }
        assert_eq!(list, new, "old {old:?} diffs {d:?}");
        d
    }

    #[test]
    fn typical_changes_are_single_diffs() {
        let a = [(1, 0), (2, 0), (3, 0)];
        assert_eq!(
            replay(&a, &[(1, 0), (2, 0), (3, 0), (4, 0)]),
            vec![VectorDiff::PushBack { value: (4, 0) }]
        );
        assert_eq!(
            replay(&a, &[(0, 0), (1, 0), (2, 0), (3, 0)]),
            vec![VectorDiff::PushFront { value: (0, 0) }]
        );
        assert_eq!(
            replay(&a, &[(1, 0), (5, 0), (2, 0), (3, 0)]),
            vec![VectorDiff::Insert {
                index: 1,
                value: (5, 0)
            }]
        );
        assert_eq!(
            replay(&a, &[(1, 0), (2, 9), (3, 0)]),
            vec![VectorDiff::Set {
                index: 1,
                value: (2, 9)
            }]
        );
        assert_eq!(
            replay(&a, &[(1, 0), (3, 0)]),
            vec![VectorDiff::Remove { index: 1 }]
        );
        // A dialog moving to the top: out of its place, in at the front.
        assert_eq!(
            replay(&a, &[(3, 1), (1, 0), (2, 0)]),
            vec![
                VectorDiff::Remove { index: 2 },
                VectorDiff::PushFront { value: (3, 1) }
            ]
        );
        assert_eq!(replay(&a, &a), vec![]);
        assert_eq!(replay(&[], &[]), vec![]);
    }

    #[test]
    fn random_lists_replay_exactly() {
        for round in 0..2000u32 {
            let n = (rand::random::<u32>() % 12) as usize;
            let mut ids: Vec<u32> = (0..20).collect();
            ids.sort_by_key(|_| rand::random::<u32>());
            let old: Vec<(u32, u32)> = ids[..n].iter().map(|&i| (i, 0)).collect();
            ids.sort_by_key(|_| rand::random::<u32>());
            let m = (rand::random::<u32>() % 12) as usize;
            let new: Vec<(u32, u32)> = ids[..m]
                .iter()
                .map(|&i| (i, rand::random::<u32>() % 2))
                .collect();
            replay(&old, &new);
            let _ = round;
        }
        // Big changes come as one Reset.
        let old: Vec<(u32, u32)> = (0..100).map(|i| (i, 0)).collect();
        let new: Vec<(u32, u32)> = (100..200).map(|i| (i, 0)).collect();
        assert_eq!(replay(&old, &new), vec![VectorDiff::Reset { values: new }]);
    }

    #[test]
    fn out_of_range_is_an_error() {
        let mut l = vec![1];
        assert!(VectorDiff::Remove { index: 1 }.apply(&mut l).is_err());
        assert!(VectorDiff::Set { index: 3, value: 2 }
            .apply(&mut l)
            .is_err());
        assert!(VectorDiff::Insert { index: 2, value: 2 }
            .apply(&mut l)
            .is_err());
        assert_eq!(l, vec![1]);
    }
}
