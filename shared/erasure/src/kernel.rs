//! The two multiply-accumulate kernels the codec can run, and the one matrix inversion it
//! needs, each in both.

use reed_solomon_erasure::galois_8;

use crate::field;

/// Most inputs one output is summed from (the data shards of a set).
pub(crate) const MAX_INPUTS: usize = 32;
/// Largest matrix [`Kernel::invert`] inverts.
pub(crate) const MAX_ORDER: usize = 32;
/// A row of the augmented matrix: the matrix in bytes `0..32`, its inverse-to-be in
/// `32..64`.
pub(crate) const AUGMENTED: usize = 2 * MAX_ORDER;

/// Which multiply-accumulate the codec runs. Both give the same bytes; a test holds them
/// to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `VGF2P8AFFINEQB` on AVX-512: 64 bytes by one constant per instruction, eight
    /// outputs accumulated in registers while each input is read once. x86-64 with GFNI
    /// and AVX-512BW only.
    Gfni,
    /// The reed-solomon-erasure crate's slice routines (its SIMD C code under the
    /// `simd-accel` feature): one input into one output per call, through memory.
    Crate,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Self {
        if Kernel::Gfni.available() {
            Kernel::Gfni
        } else {
            Kernel::Crate
        }
    }

    /// Whether this CPU runs it.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Gfni => crate::gfni::available(),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Gfni => false,
            Kernel::Crate => true,
        }
    }

    /// `outputs[r] = sum over j of rows[r][j] * inputs[j]`.
    ///
    /// Callers hold to the shapes: as many rows as outputs, each row as long as `inputs`
    /// (at most 32), every input and output of one length. A kernel asserts them.
    pub(crate) fn mul_matrix(self, rows: &[&[u8]], inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Gfni => crate::gfni::mul_matrix(rows, inputs, outputs),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Gfni => unreachable!("a codec is only built with a kernel the CPU runs"),
            Kernel::Crate => crate_mul_matrix(rows, inputs, outputs),
        }
    }

    /// Inverts the `n` x `n` matrix in bytes `0..n` of the first `n` rows; the inverse
    /// comes out in bytes `32..32 + n`. False if the matrix is singular.
    pub(crate) fn invert(self, n: usize, rows: &mut [[u8; AUGMENTED]; MAX_ORDER]) -> bool {
        assert!(n <= MAX_ORDER);
        for (r, row) in rows.iter_mut().enumerate().take(n) {
            row[n..].fill(0);
            row[MAX_ORDER + r] = 1;
        }
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Gfni => crate::gfni::invert(n, rows),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Gfni => unreachable!("a codec is only built with a kernel the CPU runs"),
            Kernel::Crate => scalar_invert(n, rows),
        }
    }
}

fn crate_mul_matrix(rows: &[&[u8]], inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
    assert_eq!(rows.len(), outputs.len());
    for (row, output) in rows.iter().zip(outputs.iter_mut()) {
        assert_eq!(row.len(), inputs.len());
        output.fill(0);
        for (&c, input) in row.iter().zip(inputs) {
            galois_8::mul_slice_xor(c, input, output);
        }
    }
}

fn scalar_invert(n: usize, rows: &mut [[u8; AUGMENTED]; MAX_ORDER]) -> bool {
    for col in 0..n {
        let Some(pivot) = (col..n).find(|&r| rows[r][col] != 0) else {
            return false;
        };
        rows.swap(col, pivot);
        let inverse = field::INVERSE[usize::from(rows[col][col])];
        for b in rows[col].iter_mut() {
            *b = field::mul(inverse, *b);
        }
        let scaled = rows[col];
        for (r, row) in rows.iter_mut().enumerate().take(n) {
            let factor = row[col];
            if r != col && factor != 0 {
                for (b, s) in row.iter_mut().zip(&scaled) {
                    *b ^= field::mul(factor, *s);
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::tests::bytes;

    fn kernels() -> Vec<Kernel> {
        [Kernel::Gfni, Kernel::Crate]
            .into_iter()
            .filter(|k| k.available())
            .collect()
    }

    /// The product written out with the field's scalar multiply.
    fn reference(rows: &[Vec<u8>], inputs: &[Vec<u8>], len: usize) -> Vec<Vec<u8>> {
        rows.iter()
            .map(|row| {
                (0..len)
                    .map(|b| {
                        row.iter()
                            .zip(inputs)
                            .fold(0u8, |acc, (&c, input)| acc ^ field::mul(c, input[b]))
                    })
                    .collect()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn every_kernel_computes_the_product(
            n_out in 1usize..20,
            n_in in 1usize..=MAX_INPUTS,
            len in 1usize..300,
            seed in any::<u64>(),
        ) {
            let coefficients = bytes(seed, n_out * n_in);
            let rows: Vec<Vec<u8>> = coefficients.chunks(n_in).map(<[u8]>::to_vec).collect();
            let inputs: Vec<Vec<u8>> = (0..n_in).map(|j| bytes(seed ^ (j as u64 + 1) << 32, len)).collect();
            let want = reference(&rows, &inputs, len);
            for kernel in kernels() {
                // Outputs start dirty: a kernel overwrites, it does not add.
                let mut outputs: Vec<Vec<u8>> = (0..n_out).map(|_| vec![0xA5; len]).collect();
                let row_refs: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
                let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
                let mut output_refs: Vec<&mut [u8]> = outputs.iter_mut().map(Vec::as_mut_slice).collect();
                kernel.mul_matrix(&row_refs, &input_refs, &mut output_refs);
                prop_assert_eq!(&outputs, &want, "{:?}", kernel);
            }
        }

        #[test]
        fn every_kernel_inverts_alike(n in 1usize..=MAX_ORDER, seed in any::<u64>()) {
            let cells = bytes(seed, n * n);
            let mut matrix = [[0u8; AUGMENTED]; MAX_ORDER];
            for (row, cells) in matrix.iter_mut().zip(cells.chunks(n)) {
                row[..n].copy_from_slice(cells);
            }
            let mut verdicts = Vec::new();
            for kernel in kernels() {
                let mut rows = matrix;
                let invertible = kernel.invert(n, &mut rows);
                if invertible {
                    // matrix * inverse = identity.
                    for (r, original) in matrix.iter().enumerate().take(n) {
                        for c in 0..n {
                            let dot = (0..n).fold(0u8, |acc, k| {
                                acc ^ field::mul(original[k], rows[k][MAX_ORDER + c])
                            });
                            prop_assert_eq!(dot, u8::from(r == c), "{:?} at {},{}", kernel, r, c);
                        }
                    }
                }
                verdicts.push((invertible, rows));
            }
            prop_assert!(verdicts.windows(2).all(|w| w[0] == w[1]));
        }
    }

    #[test]
    fn a_singular_matrix_is_refused_by_every_kernel() {
        let mut matrix = [[0u8; AUGMENTED]; MAX_ORDER];
        matrix[0][..3].copy_from_slice(&[1, 2, 3]);
        matrix[1][..3].copy_from_slice(&[2, 4, 6]);
        matrix[2][..3].copy_from_slice(&[7, 0, 9]);
        for kernel in kernels() {
            let mut rows = matrix;
            assert!(!kernel.invert(3, &mut rows), "{kernel:?}");
        }
    }
}
