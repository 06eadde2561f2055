//! Seeded, reproducible shuffled minibatches.
//!
//! The permutation of epoch `e` is a pure function of `(seed, e)`: a
//! Fisher-Yates shuffle driven by Philox draw `e` of a dedicated stream. So a
//! run resumed from a checkpoint at epoch `e` sees the same batches as the
//! uninterrupted run, and the order does not depend on the `rand` version.

use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

/// The Philox stream reserved for shuffling ("SHUF"), apart from the streams
/// models use for sampling.
pub const SHUFFLE_STREAM: u32 = 0x5348_5546;

/// Shuffled minibatches of `n` examples, a fresh permutation per epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Minibatches {
    n: usize,
    batch_size: usize,
    drop_last: bool,
    seed: u64,
    next_epoch: u64,
}

impl Minibatches {
    /// Batches of `batch_size` out of `n` examples; the last, partial batch
    /// is kept unless [`drop_last`](Self::drop_last) is set.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::value("batch_size", "must be at least 1"));
        }
        Ok(Minibatches {
            n,
            batch_size,
            drop_last: false,
            seed,
            next_epoch: 0,
        })
    }

    /// Whether to drop the last batch when it is smaller than `batch_size`.
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.n / self.batch_size
        } else {
            self.n.div_ceil(self.batch_size)
        }
    }

    /// The order of the examples in `epoch`.
    pub fn permutation(&self, epoch: u64) -> Vec<usize> {
        let mut perm: Vec<usize> = (0..self.n).collect();
        let draw = RngStream {
            seed: self.seed,
            stream: SHUFFLE_STREAM,
            offset: epoch,
        }
        .next_draw();
        // Step k uses 64 bits of block k/2. The multiply-shift maps them to
        // 0..=i with a bias below n / 2^64, which no experiment can see.
        for (k, i) in (1..self.n).rev().enumerate() {
            let b = draw.block((k / 2) as u32);
            let w = ((b[2 * (k % 2)] as u64) << 32) | b[2 * (k % 2) + 1] as u64;
            let j = ((w as u128 * (i as u128 + 1)) >> 64) as usize;
            perm.swap(i, j);
        }
        perm
    }

    /// The batches of `epoch` (random access: any epoch, any order).
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        EpochBatches {
            perm: self.permutation(epoch),
            batch_size: self.batch_size,
            drop_last: self.drop_last,
            pos: 0,
        }
    }

    /// The batches of the next epoch, counting from 0.
    pub fn next_epoch(&mut self) -> EpochBatches {
        let e = self.epoch(self.next_epoch);
        self.next_epoch += 1;
        e
    }

    /// The batches of `epoch` as matrices of rows of `data`.
    pub fn matrices<'a>(
        &self,
        epoch: u64,
        data: &'a HostMat,
    ) -> Result<impl Iterator<Item = HostMat> + 'a> {
        if data.rows != self.n {
            return Err(Error::shape(
                "Minibatches::matrices",
                format!("batches over {} rows, data has {}", self.n, data.rows),
            ));
        }
        Ok(self.epoch(epoch).map(move |idx| gather_rows(data, &idx)))
    }
}

/// Rows `idx` of `data`; the indices must be in range (as batch indices are).
pub fn gather_rows(data: &HostMat, idx: &[usize]) -> HostMat {
    let mut out = Vec::with_capacity(idx.len() * data.cols);
    for &i in idx {
        out.extend_from_slice(data.row(i));
    }
    HostMat {
        rows: idx.len(),
        cols: data.cols,
        data: out,
    }
}

/// One epoch's batches of example indices.
#[derive(Clone, Debug)]
pub struct EpochBatches {
    perm: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    pos: usize,
}

impl EpochBatches {
    /// The whole permutation of this epoch.
    pub fn order(&self) -> &[usize] {
        &self.perm
    }
}

impl Iterator for EpochBatches {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let left = self.perm.len() - self.pos;
        if left == 0 || (self.drop_last && left < self.batch_size) {
            return None;
        }
        let end = self.pos + left.min(self.batch_size);
        let b = self.perm[self.pos..end].to_vec();
        self.pos = end;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.perm.len() - self.pos;
        let n = if self.drop_last {
            left / self.batch_size
        } else {
            left.div_ceil(self.batch_size)
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for EpochBatches {}
