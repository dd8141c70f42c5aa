//! The multiply-accumulate on x86-64 with GFNI and AVX-512BW: `VGF2P8AFFINEQB` multiplies
//! 64 bytes by one field constant in one instruction (the constant as an 8x8 bit matrix,
//! [`AFFINE`]), so an output is a chain of affine-and-xor steps kept in a register.
//!
//! The only unsafe code in the workspace lives here, of two kinds:
//! - calls into functions compiled for GFNI and AVX-512BW, made only after
//!   [`available`] saw the CPU has them;
//! - masked SIMD loads and stores, each within the slice it reads or writes (the mask
//!   covers only the bytes from `offset` to the slice's end, and `offset` is below it).
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m512i, _mm512_gf2p8affine_epi64_epi8, _mm512_loadu_si512, _mm512_mask_storeu_epi8,
    _mm512_maskz_loadu_epi8, _mm512_set1_epi64, _mm512_setzero_si512, _mm512_storeu_si512,
    _mm512_xor_si512,
};

use crate::field::{AFFINE, INVERSE};
use crate::kernel::{AUGMENTED, MAX_INPUTS, MAX_ORDER};

/// Whether this CPU runs the kernels here.
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("gfni")
}

/// Outputs accumulated at once: each is one register per 64 bytes, and every input is
/// loaded once per group.
const GROUP: usize = 8;

/// `outputs[r] = sum over j of rows[r][j] * inputs[j]`.
///
/// # Panics
/// If the CPU lacks GFNI or AVX-512BW, or the shapes disagree: as many rows as outputs,
/// every row as long as `inputs` (at most [`MAX_INPUTS`]), every input and output of one
/// length.
pub(crate) fn mul_matrix(rows: &[&[u8]], inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
    assert!(available(), "the GFNI kernel needs GFNI and AVX-512BW");
    assert_eq!(rows.len(), outputs.len());
    assert!(inputs.len() <= MAX_INPUTS);
    let len = outputs.first().map_or(0, |o| o.len());
    assert!(rows.iter().all(|row| row.len() == inputs.len()));
    assert!(inputs.iter().all(|i| i.len() == len));
    assert!(outputs.iter().all(|o| o.len() == len));
    for (rows, outputs) in rows.chunks(GROUP).zip(outputs.chunks_mut(GROUP)) {
        // SAFETY: the CPU has the features (asserted above); shapes are as `group` needs.
        unsafe {
            match rows.len() {
                8 => group::<8>(rows, inputs, outputs, len),
                7 => group::<7>(rows, inputs, outputs, len),
                6 => group::<6>(rows, inputs, outputs, len),
                5 => group::<5>(rows, inputs, outputs, len),
                4 => group::<4>(rows, inputs, outputs, len),
                3 => group::<3>(rows, inputs, outputs, len),
                2 => group::<2>(rows, inputs, outputs, len),
                _ => group::<1>(rows, inputs, outputs, len),
            }
        }
    }
}

/// `G` outputs, 64 bytes at a time (the last step masked to what is left).
///
/// # Safety
/// The CPU has AVX-512F, AVX-512BW and GFNI. `rows` and `outputs` hold `G` items, every
/// row `inputs.len()` (at most `MAX_INPUTS`) coefficients, every input and output `len`
/// bytes.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn group<const G: usize>(
    rows: &[&[u8]],
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
    len: usize,
) {
    let mut matrices = [[0u64; MAX_INPUTS]; G];
    for (matrices, row) in matrices.iter_mut().zip(rows) {
        for (matrix, &c) in matrices.iter_mut().zip(row.iter()) {
            *matrix = AFFINE[usize::from(c)];
        }
    }
    let mut offset = 0;
    while offset < len {
        let left = len - offset;
        let mask = if left >= 64 {
            u64::MAX
        } else {
            (1u64 << left) - 1
        };
        let mut acc = [_mm512_setzero_si512(); G];
        for (j, input) in inputs.iter().enumerate() {
            // SAFETY: `offset < len == input.len()`; the mask reads only bytes below `len`.
            let x = unsafe { _mm512_maskz_loadu_epi8(mask, input.as_ptr().add(offset).cast()) };
            for (acc, matrices) in acc.iter_mut().zip(&matrices) {
                let m = _mm512_set1_epi64(matrices[j] as i64);
                *acc = _mm512_xor_si512(*acc, _mm512_gf2p8affine_epi64_epi8::<0>(x, m));
            }
        }
        for (acc, output) in acc.iter().zip(outputs.iter_mut()) {
            // SAFETY: as for the loads: `offset < len == output.len()`, masked to `len`.
            unsafe { _mm512_mask_storeu_epi8(output.as_mut_ptr().add(offset).cast(), mask, *acc) };
        }
        offset += 64;
    }
}

/// Gauss-Jordan elimination on augmented rows (see `kernel::invert`); one row step is
/// one affine-and-xor on a register.
///
/// # Panics
/// If the CPU lacks GFNI or AVX-512BW, or `n > MAX_ORDER`.
pub(crate) fn invert(n: usize, rows: &mut [[u8; AUGMENTED]; MAX_ORDER]) -> bool {
    assert!(available(), "the GFNI kernel needs GFNI and AVX-512BW");
    assert!(n <= MAX_ORDER);
    // SAFETY: the CPU has the features (asserted above); `n` is in bounds.
    unsafe { invert_rows(n, rows) }
}

/// # Safety
/// The CPU has AVX-512F, AVX-512BW and GFNI.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn invert_rows(n: usize, rows: &mut [[u8; AUGMENTED]; MAX_ORDER]) -> bool {
    let load = |row: &[u8; AUGMENTED]| -> __m512i {
        // SAFETY: a row is exactly 64 bytes.
        unsafe { _mm512_loadu_si512(row.as_ptr().cast()) }
    };
    let store = |row: &mut [u8; AUGMENTED], value: __m512i| {
        // SAFETY: a row is exactly 64 bytes.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), value) }
    };
    let times = |c: u8, value: __m512i| -> __m512i {
        let m = _mm512_set1_epi64(AFFINE[usize::from(c)] as i64);
        _mm512_gf2p8affine_epi64_epi8::<0>(value, m)
    };
    for col in 0..n {
        let Some(pivot) = (col..n).find(|&r| rows[r][col] != 0) else {
            return false;
        };
        rows.swap(col, pivot);
        let scaled = times(INVERSE[usize::from(rows[col][col])], load(&rows[col]));
        store(&mut rows[col], scaled);
        for (r, row) in rows.iter_mut().enumerate().take(n) {
            let factor = row[col];
            if r != col && factor != 0 {
                let reduced = _mm512_xor_si512(load(row), times(factor, scaled));
                store(row, reduced);
            }
        }
    }
    true
}
