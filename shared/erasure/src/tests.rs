//! The codec against the reed-solomon-erasure crate itself: the same parity, the same
//! rebuilt shards for every pattern of loss, codewords or not.

use proptest::prelude::*;
use reed_solomon_erasure::galois_8::ReedSolomon;

use super::*;

fn kernels() -> Vec<Kernel> {
    [Kernel::Gfni, Kernel::Crate]
        .into_iter()
        .filter(|k| k.available())
        .collect()
}

/// Seeded bytes (xorshift): the tests' data, coefficients and loss patterns.
pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// `shards` marked present or lost by `keep`, as `reconstruct` takes them.
fn marked<'a>(shards: &'a mut [Vec<u8>], keep: &[bool]) -> Vec<(&'a mut [u8], bool)> {
    shards
        .iter_mut()
        .zip(keep)
        .map(|(s, &k)| (s.as_mut_slice(), k))
        .collect()
}

/// The crate's answer for `shards` with only `keep` present.
fn crate_reconstruct(rs: &ReedSolomon, shards: &[Vec<u8>], keep: &[bool]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = shards.to_vec();
    rs.reconstruct(&mut marked(&mut out, keep))
        .expect("enough shards");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn parity_is_the_crates(
        data in 1usize..=32,
        parity in 1usize..=32,
        len in 1usize..1500,
        seed in any::<u64>(),
    ) {
        let rs = ReedSolomon::new(data, parity).expect("shape");
        let shards: Vec<Vec<u8>> = (0..data).map(|i| bytes(seed ^ i as u64, len)).collect();
        let mut want = vec![vec![0u8; len]; parity];
        rs.encode_sep(&shards, &mut want).expect("encode");
        for kernel in kernels() {
            let codec = Codec::with_kernel(data, parity, kernel).expect("codec");
            let mut got = vec![vec![0x5Au8; len]; parity];
            codec.encode_sep(&shards, &mut got).expect("encode");
            prop_assert_eq!(&got, &want, "{:?}", kernel);
        }
    }

    /// Shards that are a codeword and shards that are not (random bytes: a lying
    /// leader's set) rebuild to what the crate rebuilds, for any pattern of loss.
    #[test]
    fn rebuilt_shards_are_the_crates(
        data in 1usize..=32,
        parity in 1usize..=32,
        len in 1usize..1000,
        codeword in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let total = data + parity;
        let rs = ReedSolomon::new(data, parity).expect("shape");
        let mut shards: Vec<Vec<u8>> = (0..total).map(|i| bytes(seed ^ (i as u64) << 20, len)).collect();
        if codeword {
            let (d, p) = shards.split_at_mut(data);
            rs.encode_sep(d, p).expect("encode");
        }
        // A random set of losses the code can recover from.
        let order = bytes(seed.rotate_left(7), total);
        let lose = usize::from(order[0]) % (parity + 1);
        let mut ranked: Vec<usize> = (0..total).collect();
        ranked.sort_by_key(|&i| (order[i], i));
        let mut keep = vec![true; total];
        for &i in ranked.iter().take(lose) {
            keep[i] = false;
        }
        let want = crate_reconstruct(&rs, &shards, &keep);
        for kernel in kernels() {
            let codec = Codec::with_kernel(data, parity, kernel).expect("codec");
            // Lost shards hold garbage on the way in.
            let mut got: Vec<Vec<u8>> = shards
                .iter()
                .zip(&keep)
                .map(|(s, &k)| if k { s.clone() } else { vec![0xEE; len] })
                .collect();
            codec.reconstruct(&mut marked(&mut got, &keep)).expect("reconstruct");
            prop_assert_eq!(&got, &want, "{:?}, lost {:?}", kernel, keep);
            if codeword {
                prop_assert_eq!(&got, &shards);
            }
            // The same through `rebuild`, reading the present shards where they lie.
            let mut outputs: Vec<Vec<u8>> = keep.iter().map(|_| vec![0xEE; len]).collect();
            let mut split: Vec<Shard<'_>> = shards
                .iter()
                .zip(outputs.iter_mut())
                .zip(&keep)
                .map(|((shard, out), &k)| match k {
                    true => Shard::Present(shard),
                    false => Shard::Lost(out),
                })
                .collect();
            codec.rebuild(&mut split).expect("rebuild");
            for (position, &k) in keep.iter().enumerate() {
                if !k {
                    prop_assert_eq!(&outputs[position], &want[position], "{:?} at {}", kernel, position);
                }
            }
        }
    }
}

#[test]
fn the_32_plus_32_shape_recovers_from_any_half() {
    let rs = ReedSolomon::new(32, 32).expect("shape");
    let mut shards: Vec<Vec<u8>> = (0..64).map(|i| bytes(i, 932)).collect();
    {
        let (d, p) = shards.split_at_mut(32);
        rs.encode_sep(d, p).expect("encode");
    }
    let patterns: Vec<Vec<bool>> = vec![
        (0..64).map(|i| i >= 32).collect(),
        (0..64).map(|i| i < 32).collect(),
        (0..64).map(|i| i % 2 == 0).collect(),
        (0..64).map(|i| (16..48).contains(&i)).collect(),
    ];
    for kernel in kernels() {
        let codec = Codec::with_kernel(32, 32, kernel).expect("codec");
        for keep in &patterns {
            let mut got: Vec<Vec<u8>> = shards
                .iter()
                .zip(keep)
                .map(|(s, &k)| if k { s.clone() } else { vec![0; 932] })
                .collect();
            codec
                .reconstruct(&mut marked(&mut got, keep))
                .expect("reconstruct");
            assert_eq!(got, shards, "{kernel:?}");
        }
    }
}

#[test]
fn bad_calls_are_refused_and_write_nothing() {
    assert_eq!(
        Codec::new(0, 4).err(),
        Some(Error::Shape { data: 0, parity: 4 })
    );
    assert_eq!(
        Codec::new(33, 4).err(),
        Some(Error::Shape {
            data: 33,
            parity: 4
        })
    );
    let codec = Codec::new(4, 2).expect("codec");
    let data = vec![vec![1u8; 8]; 4];

    let mut parity = vec![vec![9u8; 8]; 3];
    assert_eq!(
        codec.encode_sep(&data, &mut parity),
        Err(Error::ShardCount {
            expected: 2,
            got: 3
        })
    );
    let mut parity = vec![vec![9u8; 8], vec![9u8; 7]];
    assert_eq!(
        codec.encode_sep(&data, &mut parity),
        Err(Error::IncorrectShardSize)
    );
    assert!(parity.iter().flatten().all(|&b| b == 9));
    let empty: Vec<Vec<u8>> = vec![Vec::new(); 4];
    let mut parity = vec![Vec::new(); 2];
    assert_eq!(
        codec.encode_sep(&empty, &mut parity),
        Err(Error::EmptyShard)
    );

    let mut shards: Vec<(Vec<u8>, bool)> = (0..6).map(|i| (vec![9u8; 8], i < 3)).collect();
    assert_eq!(
        codec.reconstruct(&mut shards),
        Err(Error::TooFewShardsPresent {
            present: 3,
            needed: 4
        })
    );
    assert!(shards.iter().all(|(s, _)| s.iter().all(|&b| b == 9)));
    let mut shards: Vec<(Vec<u8>, bool)> = (0..6).map(|i| (vec![9u8; 8 + i], i < 5)).collect();
    assert_eq!(
        codec.reconstruct(&mut shards),
        Err(Error::IncorrectShardSize)
    );
    let mut shards: Vec<(Vec<u8>, bool)> = (0..5).map(|_| (vec![9u8; 8], true)).collect();
    assert_eq!(
        codec.reconstruct(&mut shards),
        Err(Error::ShardCount {
            expected: 6,
            got: 5
        })
    );
}
