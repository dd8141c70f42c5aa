//! Which kernel a codec runs, and the arithmetic the codec does itself on the GFNI one:
//! a matrix times shards, and the inversion of the matrix decoding needs. Under
//! [`Kernel::Crate`] the crate does all of it.

/// Most inputs one output is summed from (the data shards of a set).
pub(crate) const MAX_INPUTS: usize = 32;
/// Largest matrix [`invert`] inverts.
pub(crate) const MAX_ORDER: usize = 32;
/// A row of the augmented matrix: the matrix in bytes `0..32`, its inverse-to-be in
/// `32..64`.
pub(crate) const AUGMENTED: usize = 2 * MAX_ORDER;

/// Which kernel a codec runs. Both give the crate's bytes; tests hold them to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `VGF2P8AFFINEQB` on AVX-512: 64 bytes by one constant per instruction, eight
    /// outputs accumulated in registers while each input is read once. x86-64 with GFNI
    /// and AVX-512BW only.
    Gfni,
    /// The reed-solomon-erasure crate itself (its SIMD C code under the `simd-accel`
    /// feature): one input into one output per call, through memory.
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
}

/// `outputs[r] = sum over j of rows[r][j] * inputs[j]`, on the GFNI kernel (a codec
/// does its own arithmetic only there).
///
/// Callers hold to the shapes: as many rows as outputs, each row as long as `inputs`
/// (at most 32), every input and output of one length. The kernel asserts them.
pub(crate) fn mul_matrix(rows: &[&[u8]], inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
    #[cfg(target_arch = "x86_64")]
    crate::gfni::mul_matrix(rows, inputs, outputs);
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("a codec does its own arithmetic only on the GFNI kernel");
}

/// Inverts the `n` x `n` matrix in bytes `0..n` of the first `n` rows, on the GFNI
/// kernel; the inverse comes out in bytes `32..32 + n`. False if the matrix is singular.
pub(crate) fn invert(n: usize, rows: &mut [[u8; AUGMENTED]; MAX_ORDER]) -> bool {
    augment(n, rows);
    #[cfg(target_arch = "x86_64")]
    return crate::gfni::invert(n, rows);
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("a codec does its own arithmetic only on the GFNI kernel");
}

/// Clears all but the matrix in the first `n` rows and puts the identity beside it.
fn augment(n: usize, rows: &mut [[u8; AUGMENTED]; MAX_ORDER]) {
    assert!(n <= MAX_ORDER);
    for (r, row) in rows.iter_mut().enumerate().take(n) {
        row[n..].fill(0);
        row[MAX_ORDER + r] = 1;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::field;
    use crate::tests::bytes;

    /// Gauss-Jordan with the field's scalar multiply: what the GFNI inversion must match.
    fn scalar_invert(n: usize, rows: &mut [[u8; AUGMENTED]; MAX_ORDER]) -> bool {
        augment(n, rows);
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

    type Inverter = fn(usize, &mut [[u8; AUGMENTED]; MAX_ORDER]) -> bool;

    /// The scalar reference, and the GFNI inversion where the CPU runs it.
    fn inverters() -> Vec<(&'static str, Inverter)> {
        let mut all: Vec<(&'static str, Inverter)> = vec![("scalar", scalar_invert)];
        if Kernel::Gfni.available() {
            all.push(("gfni", invert));
        }
        all
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
        fn the_gfni_kernel_computes_the_product(
            n_out in 1usize..20,
            n_in in 1usize..=MAX_INPUTS,
            len in 1usize..300,
            seed in any::<u64>(),
        ) {
            let coefficients = bytes(seed, n_out * n_in);
            let rows: Vec<Vec<u8>> = coefficients.chunks(n_in).map(<[u8]>::to_vec).collect();
            let inputs: Vec<Vec<u8>> = (0..n_in).map(|j| bytes(seed ^ (j as u64 + 1) << 32, len)).collect();
            let want = reference(&rows, &inputs, len);
            if Kernel::Gfni.available() {
                // Outputs start dirty: the kernel overwrites, it does not add.
                let mut outputs: Vec<Vec<u8>> = (0..n_out).map(|_| vec![0xA5; len]).collect();
                let row_refs: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
                let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
                let mut output_refs: Vec<&mut [u8]> = outputs.iter_mut().map(Vec::as_mut_slice).collect();
                mul_matrix(&row_refs, &input_refs, &mut output_refs);
                prop_assert_eq!(&outputs, &want);
            }
        }

        #[test]
        fn every_inversion_inverts_alike(n in 1usize..=MAX_ORDER, seed in any::<u64>()) {
            let cells = bytes(seed, n * n);
            let mut matrix = [[0u8; AUGMENTED]; MAX_ORDER];
            for (row, cells) in matrix.iter_mut().zip(cells.chunks(n)) {
                row[..n].copy_from_slice(cells);
            }
            let mut verdicts = Vec::new();
            for (name, invert) in inverters() {
                let mut rows = matrix;
                let invertible = invert(n, &mut rows);
                if invertible {
                    // matrix * inverse = identity.
                    for (r, original) in matrix.iter().enumerate().take(n) {
                        for c in 0..n {
                            let dot = (0..n).fold(0u8, |acc, k| {
                                acc ^ field::mul(original[k], rows[k][MAX_ORDER + c])
                            });
                            prop_assert_eq!(dot, u8::from(r == c), "{} at {},{}", name, r, c);
                        }
                    }
                }
                verdicts.push((invertible, rows));
            }
            prop_assert!(verdicts.windows(2).all(|w| w[0] == w[1]));
        }
    }

    #[test]
    fn a_singular_matrix_is_refused_by_every_inversion() {
        let mut matrix = [[0u8; AUGMENTED]; MAX_ORDER];
        matrix[0][..3].copy_from_slice(&[1, 2, 3]);
        matrix[1][..3].copy_from_slice(&[2, 4, 6]);
        matrix[2][..3].copy_from_slice(&[7, 0, 9]);
        for (name, invert) in inverters() {
            let mut rows = matrix;
            assert!(!invert(3, &mut rows), "{name}");
        }
    }
}
