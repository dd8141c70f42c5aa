//! The codec's kernels against the reed-solomon-erasure crate on Turbine's shape: 35 sets
//! of 32 data + 32 parity shards of 932 bytes (about 1 MiB of data), all on one thread.
//! `encode` writes the parity; `reconstruct/*` rebuilds each set in place with all data
//! lost (`coding_only`, one pattern for every set, so the crate's cache of decode
//! matrices hits) or a random half lost (a new pattern per set).
//!
//! `cargo bench -p bb-erasure`

use bb_erasure::{Codec, Kernel};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};
use reed_solomon_erasure::galois_8::ReedSolomon;

const SETS: usize = 35;
const SHARD: usize = 932;

/// One erasure coder under test: the crate, or the codec on one kernel.
enum Coder {
    Crate(ReedSolomon),
    Codec(Codec),
}

impl Coder {
    fn encode(&self, set: &mut [Vec<u8>]) {
        let (data, parity) = set.split_at_mut(32);
        match self {
            Coder::Crate(rs) => rs.encode_sep(data, parity).expect("encode"),
            Coder::Codec(codec) => codec.encode_sep(data, parity).expect("encode"),
        }
    }

    fn reconstruct(&self, set: &mut [Vec<u8>], keep: &[bool; 64]) {
        let mut shards: Vec<(&mut [u8], bool)> = set
            .iter_mut()
            .zip(keep)
            .map(|(s, &k)| (s.as_mut_slice(), k))
            .collect();
        match self {
            Coder::Crate(rs) => rs.reconstruct(&mut shards).expect("reconstruct"),
            Coder::Codec(codec) => codec.reconstruct(&mut shards).expect("reconstruct"),
        }
    }
}

fn patterns(random: bool) -> Vec<[bool; 64]> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    (0..SETS)
        .map(|_| {
            let mut keep: [bool; 64] = std::array::from_fn(|p| p >= 32);
            if random {
                for i in (1..64).rev() {
                    keep.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
                }
            }
            keep
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rs = ReedSolomon::new(32, 32).expect("shape");
    let mut coders = vec![("crate".to_string(), Coder::Crate(rs))];
    for kernel in [Kernel::Gfni, Kernel::Crate] {
        if let Ok(codec) = Codec::with_kernel(32, 32, kernel) {
            let name = format!("codec_{kernel:?}").to_lowercase();
            coders.push((name, Coder::Codec(codec)));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut sets: Vec<Vec<Vec<u8>>> = (0..SETS)
        .map(|_| {
            (0..64)
                .map(|_| {
                    let mut shard = vec![0u8; SHARD];
                    rng.fill_bytes(&mut shard);
                    shard
                })
                .collect()
        })
        .collect();
    for set in &mut sets {
        coders[0].1.encode(set);
    }

    let mut group = c.benchmark_group("erasure_1MiB");
    group.throughput(Throughput::Bytes((SETS * 32 * SHARD) as u64));
    group.sample_size(30);
    for (name, coder) in &coders {
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| sets.iter_mut().for_each(|set| coder.encode(set)))
        });
    }
    for (pattern, random) in [("coding_only", false), ("random_half", true)] {
        let keep = patterns(random);
        for (name, coder) in &coders {
            group.bench_function(format!("reconstruct/{pattern}/{name}"), |b| {
                b.iter(|| {
                    for (set, keep) in sets.iter_mut().zip(&keep) {
                        coder.reconstruct(set, keep);
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
