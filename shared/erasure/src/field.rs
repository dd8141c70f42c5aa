//! GF(2^8) as the reed-solomon-erasure crate defines it: polynomial x^8 + x^4 + x^3 + x^2 + 1
//! (0x11D), generator 2. Tables are built at compile time; a test checks every product
//! against the crate's own table.

/// The low byte of the field polynomial 0x11D.
const POLYNOMIAL: u8 = 0x1D;

/// `a * b` in the field, by shift and add.
pub(crate) const fn mul(a: u8, b: u8) -> u8 {
    let (mut a, mut b, mut product) = (a, b, 0u8);
    while b != 0 {
        if b & 1 == 1 {
            product ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= POLYNOMIAL;
        }
        b >>= 1;
    }
    product
}

/// The multiplicative inverse of every element; `INVERSE[0]` is 0 (zero has none).
pub(crate) static INVERSE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut a = 1;
    while a < 256 {
        let mut b = 1;
        while b < 256 {
            if mul(a as u8, b as u8) == 1 {
                table[a] = b as u8;
                break;
            }
            b += 1;
        }
        a += 1;
    }
    table
};

/// Multiplication by `c` as the 8x8 bit matrix the GFNI affine instruction takes: byte
/// `7 - i` of the word selects the input bits whose images under `x -> c * x` have bit `i`
/// set (multiplication by a constant is linear over GF(2), whatever the polynomial).
pub(crate) const fn affine_matrix(c: u8) -> u64 {
    let mut matrix = 0u64;
    let mut i = 0;
    while i < 8 {
        let mut row = 0u8;
        let mut k = 0;
        while k < 8 {
            if (mul(c, 1 << k) >> i) & 1 == 1 {
                row |= 1 << k;
            }
            k += 1;
        }
        matrix |= (row as u64) << (8 * (7 - i));
        i += 1;
    }
    matrix
}

/// `affine_matrix(c)` for every `c`.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) static AFFINE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = affine_matrix(c as u8);
        c += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_is_the_crates() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(
                    mul(a, b),
                    reed_solomon_erasure::galois_8::mul(a, b),
                    "{a} * {b}"
                );
            }
        }
    }

    #[test]
    fn every_nonzero_element_has_its_inverse() {
        assert_eq!(INVERSE[0], 0);
        for a in 1..=255u8 {
            assert_eq!(mul(a, INVERSE[usize::from(a)]), 1, "{a}");
        }
    }

    #[test]
    fn the_affine_matrix_applied_bit_by_bit_is_the_product() {
        // What the instruction computes, written out: output bit i is the parity of
        // (byte 7 - i of the matrix) AND x.
        for c in 0..=255u8 {
            let matrix = AFFINE[usize::from(c)];
            for x in 0..=255u8 {
                let mut y = 0u8;
                for i in 0..8 {
                    let row = (matrix >> (8 * (7 - i))) as u8;
                    y |= (((row & x).count_ones() & 1) as u8) << i;
                }
                assert_eq!(y, mul(c, x), "{c} * {x}");
            }
        }
    }
}
