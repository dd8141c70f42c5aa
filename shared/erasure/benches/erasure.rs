//! The codec's kernels against the reed-solomon-erasure crate on Turbine's shape: 35 sets
//! of 32 data + 32 parity shards of 932 bytes (about 1 MiB of data), all on one thread.
//! `encode` writes the parity; `reconstruct/*` rebuilds each set in place with all data
//! lost (`coding_only`, one pattern for every set, so the crate's cache of decode
//! matrices hits) or a random half lost (a new pattern per set).
//!
//! `cargo bench -p bb-erasure`

use bb_erasure::{Codec, Kernel};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reed_solomon_erasure::galois_8::ReedSolomon;

const SETS: usize = 35;
const SHARD: usize = 932;

fn bytes(seed: u64, len: usize) -> Vec<u8> {
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

fn patterns(random: bool) -> Vec<[bool; 64]> {
    (0..SETS as u64)
        .map(|set| {
            let mut keep: [bool; 64] = std::array::from_fn(|p| p >= 32);
            if random {
                let order = bytes(set * 7919 + 1, 64);
                for i in (1..64).rev() {
                    keep.swap(i, usize::from(order[i]) % (i + 1));
                }
            }
            keep
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rs = ReedSolomon::new(32, 32).expect("shape");
    let codecs: Vec<(String, Codec)> = [Kernel::Gfni, Kernel::Crate]
        .into_iter()
        .filter(|k| k.available())
        .map(|k| {
            (
                format!("codec_{k:?}").to_lowercase(),
                Codec::with_kernel(32, 32, k).expect("codec"),
            )
        })
        .collect();
    let mut sets: Vec<Vec<Vec<u8>>> = (0..SETS as u64)
        .map(|s| (0..64).map(|i| bytes(s << 8 | i, SHARD)).collect())
        .collect();
    for set in &mut sets {
        let (d, p) = set.split_at_mut(32);
        rs.encode_sep(d, p).expect("encode");
    }

    let mut group = c.benchmark_group("erasure_1MiB");
    group.throughput(Throughput::Bytes((SETS * 32 * SHARD) as u64));
    group.sample_size(30);
    group.bench_function("encode/crate", |b| {
        b.iter(|| {
            for set in &mut sets {
                let (d, p) = set.split_at_mut(32);
                rs.encode_sep(d, p).expect("encode");
            }
        })
    });
    for (name, codec) in &codecs {
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                for set in &mut sets {
                    let (d, p) = set.split_at_mut(32);
                    codec.encode_sep(d, p).expect("encode");
                }
            })
        });
    }
    for (pattern, random) in [("coding_only", false), ("random_half", true)] {
        let keep = patterns(random);
        group.bench_function(format!("reconstruct/{pattern}/crate"), |b| {
            b.iter(|| {
                for (set, keep) in sets.iter_mut().zip(&keep) {
                    let mut refs: Vec<(&mut [u8], bool)> = set
                        .iter_mut()
                        .zip(keep)
                        .map(|(s, &k)| (s.as_mut_slice(), k))
                        .collect();
                    rs.reconstruct(&mut refs).expect("reconstruct");
                }
            })
        });
        for (name, codec) in &codecs {
            group.bench_function(format!("reconstruct/{pattern}/{name}"), |b| {
                b.iter(|| {
                    for (set, keep) in sets.iter_mut().zip(&keep) {
                        let mut refs: Vec<(&mut [u8], bool)> = set
                            .iter_mut()
                            .zip(keep)
                            .map(|(s, &k)| (s.as_mut_slice(), k))
                            .collect();
                        codec.reconstruct(&mut refs).expect("reconstruct");
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
