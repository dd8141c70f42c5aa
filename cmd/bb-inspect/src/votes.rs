//! `votes --slot N`: who voted which block of a slot, with what stake and lockout; every
//! signature re-verified here from the vote's canonical bytes, and the stake share each
//! block reached counted from the votes that verify.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use bb_cli::{EXIT_OK, EXIT_USER_ERROR, Output};
use bb_core::{Canonical, SignedVote};
use bb_rpc::pb::VoteInfo;
use serde::Serialize;

use crate::table::{self, opt, percent, short_addr, short_hash};
use crate::target::Target;

#[derive(Debug, Clone, Serialize)]
pub struct VoteRow {
    pub voter: String,
    pub stake: u64,
    pub slot: u64,
    pub block_id: String,
    pub bank_hash: String,
    pub confirmation_count: u32,
    /// 2^confirmation_count slots.
    pub lockout: u64,
    pub root: Option<u64>,
    pub timestamp_ms: u64,
    pub signature: String,
    /// The signature verifies over the signed vote and the node's fields match it.
    pub verified: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The voter also voted another block of this slot.
    pub equivocating: bool,
}

/// The verified votes for one block of the slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockTally {
    pub block_id: String,
    /// The bank hashes its voters computed (more than one: they disagree on the state).
    pub bank_hashes: Vec<String>,
    pub validators: usize,
    pub stake: u64,
    /// `stake / total_stake`.
    pub share: f64,
    /// At least 2/3 of the stake.
    pub supermajority: bool,
}

#[derive(Debug, Serialize)]
pub struct VotesReport {
    pub slot: u64,
    pub node: String,
    pub total_stake: u64,
    /// Staked validators the node knows of (itself and its peers), if it said.
    pub staked_validators: Option<usize>,
    pub votes: Vec<VoteRow>,
    pub blocks: Vec<BlockTally>,
    pub invalid_votes: usize,
    pub equivocators: Vec<String>,
}

/// The lockout of a vote stacked `count` times: 2^count slots (saturating).
pub fn lockout(count: u32) -> u64 {
    1u64.checked_shl(count).unwrap_or(u64::MAX)
}

/// Decodes and verifies one vote; the row shows what was signed when it decodes.
pub fn check_vote(info: &VoteInfo, slot: u64) -> VoteRow {
    let mut row = VoteRow {
        voter: info.voter.clone(),
        stake: info.stake,
        slot: info.slot,
        block_id: info.block_id.clone(),
        bank_hash: info.bank_hash.clone(),
        confirmation_count: info.confirmation_count,
        lockout: lockout(info.confirmation_count),
        root: info.root,
        timestamp_ms: info.timestamp_ms,
        signature: info.signature.clone(),
        verified: false,
        problem: None,
        equivocating: false,
    };
    let signed = match SignedVote::from_bytes(&info.signed_vote) {
        Ok(v) => v,
        Err(e) => {
            row.problem = Some(format!("signed vote does not decode: {e}"));
            return row;
        }
    };
    let v = signed.vote;
    // Show what was signed, not what the node says was signed.
    row.voter = v.voter.to_address();
    row.slot = v.slot;
    row.block_id = v.block_id.to_string();
    row.bank_hash = v.bank_hash.to_string();
    row.confirmation_count = v.confirmation_count;
    row.lockout = lockout(v.confirmation_count);
    row.root = v.root;
    row.timestamp_ms = v.timestamp_ms;
    row.signature = signed.signature.to_string();
    if let Err(e) = signed.verify() {
        row.problem = Some(format!("signature does not verify: {e}"));
        return row;
    }
    let mut differ = Vec::new();
    if v.slot != slot {
        differ.push("slot");
    }
    if info.voter != row.voter {
        differ.push("voter");
    }
    if info.block_id != row.block_id {
        differ.push("block_id");
    }
    if info.bank_hash != row.bank_hash {
        differ.push("bank_hash");
    }
    if info.confirmation_count != v.confirmation_count {
        differ.push("confirmation_count");
    }
    if info.root != v.root {
        differ.push("root");
    }
    if info.timestamp_ms != v.timestamp_ms {
        differ.push("timestamp_ms");
    }
    if info.signature != row.signature {
        differ.push("signature");
    }
    if differ.is_empty() {
        row.verified = true;
    } else {
        row.problem = Some(format!(
            "the node's {} differ from the signed vote",
            differ.join(", ")
        ));
    }
    row
}

/// Marks voters with verified votes for two different blocks of the slot, and returns them.
pub fn mark_equivocators(rows: &mut [VoteRow]) -> Vec<String> {
    let mut blocks: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.verified) {
        blocks
            .entry(r.voter.clone())
            .or_default()
            .insert(r.block_id.clone());
    }
    let twice: Vec<String> = blocks
        .into_iter()
        .filter(|(_, b)| b.len() > 1)
        .map(|(v, _)| v)
        .collect();
    for r in rows.iter_mut() {
        r.equivocating = r.verified && twice.contains(&r.voter);
    }
    twice
}

/// Stake per block id from the verified votes (each voter counted once per block), most
/// stake first.
pub fn tally(rows: &[VoteRow], total_stake: u64) -> Vec<BlockTally> {
    #[derive(Default)]
    struct Acc {
        voters: BTreeMap<String, u64>,
        bank_hashes: BTreeSet<String>,
    }
    let mut blocks: BTreeMap<&str, Acc> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.verified) {
        let acc = blocks.entry(&r.block_id).or_default();
        acc.voters.insert(r.voter.clone(), r.stake);
        acc.bank_hashes.insert(r.bank_hash.clone());
    }
    let mut out: Vec<BlockTally> = blocks
        .into_iter()
        .map(|(block_id, acc)| {
            let stake = acc.voters.values().fold(0u64, |t, s| t.saturating_add(*s));
            BlockTally {
                block_id: block_id.to_string(),
                bank_hashes: acc.bank_hashes.into_iter().collect(),
                validators: acc.voters.len(),
                stake,
                share: table::share(stake, total_stake),
                supermajority: total_stake > 0
                    && u128::from(stake) * 3 >= u128::from(total_stake) * 2,
            }
        })
        .collect();
    out.sort_by(|a, b| b.stake.cmp(&a.stake).then(a.block_id.cmp(&b.block_id)));
    out
}

/// "3/3 validators, 100.0% of stake for block X (2/3 reached)".
pub fn tally_line(t: &BlockTally, total_stake: u64, staked_validators: Option<usize>) -> String {
    let validators = match staked_validators {
        Some(n) => format!("{}/{n}", t.validators),
        None => t.validators.to_string(),
    };
    let mut line = format!(
        "{validators} validators, {} of stake for block {}",
        percent(t.stake, total_stake),
        t.block_id
    );
    if t.supermajority {
        line.push_str(" (2/3 reached)");
    }
    if t.bank_hashes.len() > 1 {
        line.push_str(&format!(
            "; warning: its voters disagree on the bank hash ({})",
            t.bank_hashes
                .iter()
                .map(|h| short_hash(h))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    line
}

pub async fn run(out: Output, target: &Target, slot: u64) -> anyhow::Result<u8> {
    let client = target.connect().await?;
    let answer = match client.votes(slot).await {
        Ok(a) => a,
        Err(e) if e.is_not_found() => anyhow::bail!("node has no votes for slot {slot}"),
        Err(e) => return Err(e).context(format!("votes for slot {slot}")),
    };
    // How many staked validators there are, to say "3/3": the node and its staked peers.
    let (status, peers) = futures::join!(client.status(), client.peers());
    let staked_validators = match (status, peers) {
        (Ok(s), Ok(p)) => {
            Some(p.peers.iter().filter(|p| p.stake > 0).count() + usize::from(s.stake > 0))
        }
        _ => None,
    };
    let mut votes: Vec<VoteRow> = answer.votes.iter().map(|v| check_vote(v, slot)).collect();
    let equivocators = mark_equivocators(&mut votes);
    votes.sort_by(|a, b| b.stake.cmp(&a.stake).then(a.voter.cmp(&b.voter)));
    let blocks = tally(&votes, answer.total_stake);
    let report = VotesReport {
        slot,
        node: target.selected.label(),
        total_stake: answer.total_stake,
        staked_validators,
        invalid_votes: votes.iter().filter(|v| !v.verified).count(),
        votes,
        blocks,
        equivocators,
    };
    out.emit(&report, || render(&report));
    if report.invalid_votes > 0 {
        eprintln!(
            "error: {} of {} votes for slot {slot} failed verification",
            report.invalid_votes,
            report.votes.len()
        );
        return Ok(EXIT_USER_ERROR);
    }
    Ok(EXIT_OK)
}

pub fn render(r: &VotesReport) -> String {
    if r.votes.is_empty() {
        return format!("{} has seen no votes for slot {} yet", r.node, r.slot);
    }
    let mut t = table::table(
        &[
            "voter",
            "block",
            "bank hash",
            "stake",
            "conf",
            "lockout",
            "root",
            "signature",
        ],
        &[3, 4, 5, 6],
    );
    for v in &r.votes {
        let sig = match (&v.problem, v.equivocating) {
            (Some(p), _) => format!("BAD: {p}"),
            (None, true) => "ok (EQUIVOCATING)".into(),
            (None, false) => "ok".into(),
        };
        t.add_row(vec![
            short_addr(&v.voter),
            short_hash(&v.block_id),
            short_hash(&v.bank_hash),
            format!("{} ({})", v.stake, percent(v.stake, r.total_stake)),
            v.confirmation_count.to_string(),
            v.lockout.to_string(),
            opt(v.root),
            sig,
        ]);
    }
    let mut text = format!("slot {}: {} votes\n{t}", r.slot, r.votes.len());
    for b in &r.blocks {
        text.push('\n');
        text.push_str(&tally_line(b, r.total_stake, r.staked_validators));
    }
    if r.blocks.is_empty() {
        text.push_str("\nno vote verifies: no stake counted");
    }
    for e in &r.equivocators {
        text.push_str(&format!(
            "\nwarning: {e} voted for more than one block of slot {}",
            r.slot
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use bb_core::{Hash, Keypair, Vote};

    use super::*;

    fn vote(seed: u8, block: u8, stake: u64, count: u32) -> VoteInfo {
        let k = Keypair::from_seed(&[seed; 32]);
        let signed = Vote {
            voter: k.pubkey(),
            slot: 40,
            block_id: Hash([block; 32]),
            bank_hash: Hash([block + 100; 32]),
            confirmation_count: count,
            root: Some(7),
            timestamp_ms: 1_700_000_000_000,
        }
        .sign(&k);
        VoteInfo {
            voter: k.pubkey().to_address(),
            stake,
            slot: 40,
            block_id: signed.vote.block_id.to_string(),
            bank_hash: signed.vote.bank_hash.to_string(),
            confirmation_count: count,
            root: Some(7),
            timestamp_ms: signed.vote.timestamp_ms,
            signature: signed.signature.to_string(),
            signed_vote: signed.to_bytes(),
        }
    }

    #[test]
    fn honest_votes_verify_and_lockouts_double() {
        let row = check_vote(&vote(1, 1, 100, 3), 40);
        assert!(row.verified, "{:?}", row.problem);
        assert_eq!(row.lockout, 8);
        assert_eq!(lockout(0), 1);
        assert_eq!(lockout(31), 1 << 31);
        assert_eq!(lockout(64), u64::MAX);
    }

    #[test]
    fn forged_or_misreported_votes_do_not_verify() {
        let mut bad_sig = vote(1, 1, 100, 1);
        let last = bad_sig.signed_vote.len() - 1;
        bad_sig.signed_vote[last] ^= 1;
        let row = check_vote(&bad_sig, 40);
        assert!(!row.verified);
        assert!(
            row.problem
                .unwrap()
                .starts_with("signature does not verify")
        );

        let mut lying = vote(1, 1, 100, 1);
        lying.block_id = Hash([9; 32]).to_string();
        let row = check_vote(&lying, 40);
        assert!(!row.verified);
        assert_eq!(
            row.block_id,
            Hash([1; 32]).to_string(),
            "shows what was signed"
        );
        assert!(row.problem.unwrap().contains("block_id"));

        let mut junk = vote(1, 1, 100, 1);
        junk.signed_vote = vec![1, 2, 3];
        assert!(
            check_vote(&junk, 40)
                .problem
                .unwrap()
                .contains("does not decode")
        );

        let other_slot = check_vote(&vote(1, 1, 100, 1), 41);
        assert!(other_slot.problem.unwrap().contains("slot"));
    }

    #[test]
    fn stake_share_is_counted_per_block_from_verified_votes_only() {
        let mut forged = vote(4, 1, 1000, 1);
        forged.signed_vote[5] ^= 1;
        let infos = [
            vote(1, 1, 100, 2),
            vote(2, 1, 100, 1),
            vote(3, 2, 100, 1),
            forged,
        ];
        let mut rows: Vec<VoteRow> = infos.iter().map(|v| check_vote(v, 40)).collect();
        assert!(mark_equivocators(&mut rows).is_empty());
        let t = tally(&rows, 300);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].validators, t[0].stake), (2, 200));
        assert!(t[0].supermajority, "200 of 300 is exactly 2/3");
        assert!((t[0].share - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!((t[1].validators, t[1].stake), (1, 100));
        assert!(!t[1].supermajority);
        assert_eq!(
            tally_line(&t[0], 300, Some(3)),
            format!(
                "2/3 validators, 66.7% of stake for block {} (2/3 reached)",
                Hash([1; 32])
            )
        );
        assert!(tally_line(&t[1], 300, None).starts_with("1 validators, 33.3%"));
    }

    #[test]
    fn a_voter_on_two_blocks_is_an_equivocator_and_counted_once_per_block() {
        let infos = [vote(1, 1, 100, 1), vote(1, 2, 100, 1), vote(2, 1, 100, 1)];
        let mut rows: Vec<VoteRow> = infos.iter().map(|v| check_vote(v, 40)).collect();
        let eq = mark_equivocators(&mut rows);
        assert_eq!(eq, vec![Keypair::from_seed(&[1; 32]).pubkey().to_address()]);
        assert_eq!(rows.iter().filter(|r| r.equivocating).count(), 2);
        let t = tally(&rows, 300);
        assert_eq!(t[0].stake, 200);
        let report = VotesReport {
            slot: 40,
            node: "node 0".into(),
            total_stake: 300,
            staked_validators: Some(3),
            invalid_votes: 0,
            blocks: t,
            votes: rows,
            equivocators: eq,
        };
        let text = render(&report);
        assert!(text.contains("EQUIVOCATING"), "{text}");
        assert!(
            text.contains("voted for more than one block of slot 40"),
            "{text}"
        );
        assert!(text.contains("2/3 validators, 66.7% of stake"), "{text}");
    }
}
