//! Reed-Solomon erasure coding over GF(2^8), with the reed-solomon-erasure crate's code:
//! the same field, the same encoding matrix (read out of the crate when a codec is
//! built), the same choice of shards to decode from, so the same bytes out, whichever
//! kernel runs and whichever CPU runs it.
//!
//! What differs is the arithmetic. The crate multiplies one input shard into one output
//! shard per call, through memory. Here an output is summed in registers over all its
//! inputs, 64 bytes at a time, with the GFNI affine instruction doing a 64-byte multiply
//! by a constant in one step ([`Kernel::Gfni`]). On CPUs without GFNI and AVX-512BW the
//! codec hands every call to the crate itself ([`Kernel::Crate`]).
//!
//! Decoding on GFNI inverts only the part of the matrix the lost data shards need: with
//! `m` data shards lost, an `m` x `m` matrix, not the whole `32` x `32`.

mod field;
#[cfg(target_arch = "x86_64")]
mod gfni;
mod kernel;

pub use kernel::Kernel;
use kernel::{AUGMENTED, MAX_INPUTS, MAX_ORDER};
use reed_solomon_erasure::galois_8::ReedSolomon;

/// Why a codec could not be built or a call was refused. Nothing is written when a call
/// is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "a codec takes 1 to {MAX_INPUTS} data and 1 to {MAX_ORDER} parity shards, not {data} and {parity}"
    )]
    Shape { data: usize, parity: usize },
    #[error("the {0:?} kernel does not run on this CPU")]
    KernelUnavailable(Kernel),
    #[error("expected {expected} shards, got {got}")]
    ShardCount { expected: usize, got: usize },
    #[error("shards are empty")]
    EmptyShard,
    #[error("shards differ in length")]
    IncorrectShardSize,
    #[error("{present} shards present, {needed} needed")]
    TooFewShardsPresent { present: usize, needed: usize },
    #[error("the shards decoded from do not determine the data")]
    Singular,
}

/// One shard of a set handed to [`Codec::rebuild`]: one to decode from, or one lost, to
/// be written.
#[derive(Debug)]
pub enum Shard<'a> {
    Present(&'a [u8]),
    Lost(&'a mut [u8]),
}

impl Shard<'_> {
    pub fn len(&self) -> usize {
        match self {
            Shard::Present(bytes) => bytes.len(),
            Shard::Lost(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A Reed-Solomon code of `data` + `parity` shards. Stateless once built; share it.
#[derive(Debug, Clone)]
pub struct Codec {
    data: usize,
    parity: usize,
    /// The parity rows of the encoding matrix, `parity` rows of `data` coefficients.
    parity_rows: Vec<u8>,
    kernel: Kernel,
    /// The crate's codec: the whole of encoding and decoding under [`Kernel::Crate`].
    reference: ReedSolomon,
}

impl Codec {
    /// A codec on the fastest kernel this CPU runs.
    pub fn new(data: usize, parity: usize) -> Result<Self, Error> {
        Self::with_kernel(data, parity, Kernel::detect())
    }

    /// A codec on a given kernel (benches and tests compare them).
    pub fn with_kernel(data: usize, parity: usize, kernel: Kernel) -> Result<Self, Error> {
        let shape = Error::Shape { data, parity };
        if !(1..=MAX_INPUTS).contains(&data) || !(1..=MAX_ORDER).contains(&parity) {
            return Err(shape);
        }
        if !kernel.available() {
            return Err(Error::KernelUnavailable(kernel));
        }
        // The crate's matrix, column by column: the parity of a unit vector.
        let reference = ReedSolomon::new(data, parity).map_err(|_| shape.clone())?;
        let mut parity_rows = vec![0u8; parity * data];
        for column in 0..data {
            let unit: Vec<[u8; 1]> = (0..data).map(|k| [u8::from(k == column)]).collect();
            let mut image = vec![[0u8; 1]; parity];
            reference
                .encode_sep(&unit, &mut image)
                .map_err(|_| shape.clone())?;
            for (row, [value]) in image.iter().enumerate() {
                parity_rows[row * data + column] = *value;
            }
        }
        Ok(Codec {
            data,
            parity,
            parity_rows,
            kernel,
            reference,
        })
    }

    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    pub fn data_shards(&self) -> usize {
        self.data
    }

    pub fn parity_shards(&self) -> usize {
        self.parity
    }

    fn parity_row(&self, row: usize) -> &[u8] {
        &self.parity_rows[row * self.data..(row + 1) * self.data]
    }

    /// Writes the parity of `data` into `parity`.
    pub fn encode_sep<D: AsRef<[u8]>, P: AsMut<[u8]>>(
        &self,
        data: &[D],
        parity: &mut [P],
    ) -> Result<(), Error> {
        if data.len() != self.data {
            return Err(Error::ShardCount {
                expected: self.data,
                got: data.len(),
            });
        }
        if parity.len() != self.parity {
            return Err(Error::ShardCount {
                expected: self.parity,
                got: parity.len(),
            });
        }
        let inputs: Vec<&[u8]> = data.iter().map(AsRef::as_ref).collect();
        let mut outputs: Vec<&mut [u8]> = parity.iter_mut().map(AsMut::as_mut).collect();
        let len = inputs[0].len();
        if len == 0 {
            return Err(Error::EmptyShard);
        }
        if inputs.iter().any(|s| s.len() != len) || outputs.iter().any(|s| s.len() != len) {
            return Err(Error::IncorrectShardSize);
        }
        if self.kernel == Kernel::Crate {
            return self
                .reference
                .encode_sep(&inputs, &mut outputs)
                .map_err(|_| Error::IncorrectShardSize);
        }
        let rows: Vec<&[u8]> = (0..self.parity).map(|r| self.parity_row(r)).collect();
        kernel::mul_matrix(&rows, &inputs, &mut outputs);
        Ok(())
    }

    /// Rebuilds every shard not marked present, in place, from the first `data` present
    /// ones (as the crate does): lost data shards first, then lost parity from the whole
    /// data. Every shard, present or not, must have the same non-zero length.
    pub fn reconstruct<S: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        shards: &mut [(S, bool)],
    ) -> Result<(), Error> {
        if self.kernel == Kernel::Crate {
            let shape = shards
                .iter()
                .map(|(shard, here)| (shard.as_ref().len(), *here));
            if !self.check(shape)? {
                return Ok(());
            }
            return self
                .reference
                .reconstruct(shards)
                .map_err(|_| Error::Singular);
        }
        let mut split: Vec<Shard<'_>> = shards
            .iter_mut()
            .map(|(shard, here)| {
                let shard: &mut [u8] = S::as_mut(shard);
                match here {
                    true => Shard::Present(shard),
                    false => Shard::Lost(shard),
                }
            })
            .collect();
        self.rebuild(&mut split)
    }

    /// [`reconstruct`](Self::reconstruct) with the shards decoded from only read: they
    /// may lie anywhere (in received packets, say) and are not copied.
    pub fn rebuild(&self, shards: &mut [Shard<'_>]) -> Result<(), Error> {
        let shape = shards
            .iter()
            .map(|shard| (shard.len(), matches!(shard, Shard::Present(_))));
        if !self.check(shape)? {
            return Ok(());
        }
        if self.kernel == Kernel::Crate {
            // The crate rebuilds in place: present shards go through a copy.
            let mut owned: Vec<(Vec<u8>, bool)> = shards
                .iter()
                .map(|shard| match shard {
                    Shard::Present(bytes) => (bytes.to_vec(), true),
                    Shard::Lost(bytes) => (vec![0; bytes.len()], false),
                })
                .collect();
            self.reference
                .reconstruct(&mut owned)
                .map_err(|_| Error::Singular)?;
            for (shard, (bytes, _)) in shards.iter_mut().zip(owned) {
                if let Shard::Lost(out) = shard {
                    out.copy_from_slice(&bytes);
                }
            }
            return Ok(());
        }
        let mut present: Vec<(usize, &[u8])> = Vec::with_capacity(shards.len());
        let mut lost: Vec<(usize, &mut [u8])> = Vec::with_capacity(shards.len());
        for (position, shard) in shards.iter_mut().enumerate() {
            match shard {
                Shard::Present(bytes) => present.push((position, *bytes)),
                Shard::Lost(bytes) => lost.push((position, &mut **bytes)),
            }
        }
        // Decoded from: the first `data` present shards, which hold every present data
        // shard and as many parity shards as data shards are lost.
        present.truncate(self.data);
        let split = lost.partition_point(|(position, _)| *position < self.data);
        let (lost_data, lost_parity) = lost.split_at_mut(split);
        let mut data: Vec<(usize, &[u8])> = Vec::with_capacity(self.data);
        if !lost_data.is_empty() {
            self.decode_data(&present, lost_data)?;
        }
        data.extend(present.iter().filter(|(p, _)| *p < self.data).copied());
        data.extend(lost_data.iter().map(|(p, s)| (*p, &**s)));
        data.sort_unstable_by_key(|(p, _)| *p);
        if !lost_parity.is_empty() {
            let rows: Vec<&[u8]> = lost_parity
                .iter()
                .map(|(p, _)| self.parity_row(p - self.data))
                .collect();
            let inputs: Vec<&[u8]> = data.iter().map(|(_, s)| *s).collect();
            let mut outputs: Vec<&mut [u8]> =
                lost_parity.iter_mut().map(|(_, s)| &mut **s).collect();
            kernel::mul_matrix(&rows, &inputs, &mut outputs);
        }
        Ok(())
    }

    /// Whether shards of these (length, present) are a call to act on: the right count,
    /// one non-zero length, and enough present. False if nothing is lost.
    fn check(&self, shape: impl ExactSizeIterator<Item = (usize, bool)>) -> Result<bool, Error> {
        let total = self.data + self.parity;
        if shape.len() != total {
            return Err(Error::ShardCount {
                expected: total,
                got: shape.len(),
            });
        }
        let (mut len, mut present) = (None, 0);
        for (shard_len, here) in shape {
            if *len.get_or_insert(shard_len) != shard_len {
                return Err(Error::IncorrectShardSize);
            }
            present += usize::from(here);
        }
        if len == Some(0) {
            return Err(Error::EmptyShard);
        }
        if present == total {
            return Ok(false);
        }
        if present < self.data {
            return Err(Error::TooFewShardsPresent {
                present,
                needed: self.data,
            });
        }
        Ok(true)
    }

    /// The lost data shards from `present` (the first `data` present shards).
    ///
    /// With `m` data shards lost, `present` holds the other data shards and `m` parity
    /// shards `u`. Each of those says `parity_u = P[u] * data`, so the lost data `x`
    /// solve `B x = r`, where `B` is `P` restricted to rows `u` and the lost columns, and
    /// `r_u = parity_u + P[u] * (the present data)`. Hence
    /// `x = B^-1 parity_u + (B^-1 Q) * (present data)`, `Q` being `P` on rows `u` and the
    /// present columns: one row of `data` coefficients per lost shard.
    fn decode_data(
        &self,
        present: &[(usize, &[u8])],
        lost: &mut [(usize, &mut [u8])],
    ) -> Result<(), Error> {
        let m = lost.len();
        let used_parity: Vec<usize> = present
            .iter()
            .filter(|(p, _)| *p >= self.data)
            .map(|(p, _)| p - self.data)
            .collect();
        let present_data: Vec<usize> = present
            .iter()
            .filter(|(p, _)| *p < self.data)
            .map(|(p, _)| *p)
            .collect();
        debug_assert_eq!(used_parity.len(), m);
        let mut augmented = [[0u8; AUGMENTED]; MAX_ORDER];
        for (row, &u) in augmented.iter_mut().zip(&used_parity) {
            let coefficients = self.parity_row(u);
            for (cell, (j, _)) in row.iter_mut().zip(lost.iter()) {
                *cell = coefficients[*j];
            }
        }
        if !kernel::invert(m, &mut augmented) {
            return Err(Error::Singular);
        }
        // Decode rows: `B^-1` over the parity inputs, then `B^-1 Q` over the data inputs.
        let inverse: Vec<&[u8]> = augmented[..m]
            .iter()
            .map(|row| &row[MAX_ORDER..MAX_ORDER + m])
            .collect();
        // On the stack: `Q` and `B^-1 Q` are at most 32 x 32, and so is the decode matrix.
        let k = present_data.len();
        let mut decode = [[0u8; MAX_INPUTS]; MAX_ORDER];
        for (row, inv) in decode.iter_mut().zip(&inverse) {
            row[..m].copy_from_slice(inv);
        }
        if k > 0 {
            let mut q = [[0u8; MAX_INPUTS]; MAX_ORDER];
            for (q_row, &u) in q.iter_mut().zip(&used_parity) {
                let row = self.parity_row(u);
                for (cell, &j) in q_row.iter_mut().zip(&present_data) {
                    *cell = row[j];
                }
            }
            let q_refs: Vec<&[u8]> = q[..m].iter().map(|row| &row[..k]).collect();
            let mut product_refs: Vec<&mut [u8]> = decode[..m]
                .iter_mut()
                .map(|row| &mut row[m..m + k])
                .collect();
            kernel::mul_matrix(&inverse, &q_refs, &mut product_refs);
        }
        let rows: Vec<&[u8]> = decode[..m].iter().map(|row| &row[..self.data]).collect();
        let inputs: Vec<&[u8]> = present
            .iter()
            .filter(|(p, _)| *p >= self.data)
            .chain(present.iter().filter(|(p, _)| *p < self.data))
            .map(|(_, s)| *s)
            .collect();
        let mut outputs: Vec<&mut [u8]> = lost.iter_mut().map(|(_, s)| &mut **s).collect();
        kernel::mul_matrix(&rows, &inputs, &mut outputs);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
