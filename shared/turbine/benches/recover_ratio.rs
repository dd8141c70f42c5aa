//! Recovery of a 1 MiB block with half its shreds lost, against the raw Reed-Solomon
//! crate, measured interleaved: each round times the raw reconstruct, the same by
//! `bb-erasure` (the codec Turbine runs), and then each assembler path on the same data, so a host whose speed drifts (this one's does, by
//! 20 % within minutes) slows both sides of a ratio alike. Prints the median and the
//! fastest quarter of each, and the ratios of raw (the crate's, then the codec's) to
//! assembler throughput.
//!
//! `cargo bench -p bb-turbine --bench recover_ratio [-- ROUNDS]`

use std::time::Instant;

use bb_core::Keypair;
use bb_erasure::Codec;
use bb_turbine::{DATA_SHREDS_PER_SET, FecSet, SHREDS_PER_SET, Shredder};
use reed_solomon_erasure::galois_8::ReedSolomon;

mod common;

use common::{
    SLOT, arriving, assemble, block, codec_reconstruct, patterns, payload_shards, raw_reconstruct,
};

/// Microseconds since `start`.
fn micros(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e6
}

/// (median, mean of the fastest quarter) of `samples`.
fn summary(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let quarter = (samples.len() / 4).max(1);
    let fast = samples[..quarter].iter().sum::<f64>() / quarter as f64;
    (samples[samples.len() / 2], fast)
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(400);
    let block = block();
    let leader = Keypair::from_seed(&[1; 32]);
    let sets: Vec<FecSet> = Shredder::new(leader.clone())
        .shred(SLOT, SLOT - 1, &block)
        .expect("shred");
    let rs = ReedSolomon::new(DATA_SHREDS_PER_SET, SHREDS_PER_SET - DATA_SHREDS_PER_SET)
        .expect("valid shape");
    let codec =
        Codec::new(DATA_SHREDS_PER_SET, SHREDS_PER_SET - DATA_SHREDS_PER_SET).expect("valid shape");

    println!("1 MiB block, half of every set lost; {rounds} interleaved rounds; microseconds");
    for (name, random) in [("coding_only", false), ("random_half", true)] {
        let keep = patterns(sets.len(), random);
        let mut shards = payload_shards(&sets);
        let arriving = arriving(&sets, &keep);
        let one_batch = [arriving.as_slice()];
        let of_64: Vec<&[&[u8]]> = arriving.chunks(64).collect();

        let (mut raw, mut coded, mut whole, mut sixty_four) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let start = Instant::now();
            for (set, keep) in shards.iter_mut().zip(&keep) {
                raw_reconstruct(&rs, set, keep);
            }
            raw.push(micros(start));
            let start = Instant::now();
            for (set, keep) in shards.iter_mut().zip(&keep) {
                codec_reconstruct(&codec, set, keep);
            }
            coded.push(micros(start));
            let start = Instant::now();
            assemble(&leader, &one_batch);
            whole.push(micros(start));
            let start = Instant::now();
            assemble(&leader, &of_64);
            sixty_four.push(micros(start));
        }
        let (raw_median, raw_fast) = summary(&mut raw);
        println!(
            "{name}: raw_rs_reconstruct (1 thread)  median {raw_median:7.0}  fastest quarter {raw_fast:7.0}"
        );
        let (codec_median, codec_fast) = summary(&mut coded);
        println!(
            "{name}: codec_reconstruct ({:?}, 1 thread) median {codec_median:7.0}  fastest quarter {codec_fast:7.0}",
            codec.kernel()
        );
        for (path, samples) in [
            ("assemble_one_batch", &mut whole),
            ("assemble_batches_of_64", &mut sixty_four),
        ] {
            let (median, fast) = summary(samples);
            println!(
                "{name}: {path:<29} median {median:7.0}  fastest quarter {fast:7.0}  of the crate {:3.0} % (median), {:3.0} % (fastest quarter); of the codec {:3.0} %, {:3.0} %",
                100.0 * raw_median / median,
                100.0 * raw_fast / fast,
                100.0 * codec_median / median,
                100.0 * codec_fast / fast
            );
        }
    }
}
