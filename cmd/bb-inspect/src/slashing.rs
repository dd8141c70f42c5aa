//! `slashing`: the slashing evidence a node holds and the stake cuts its chain applied.
//! Every piece of evidence is decoded and checked here with the signatures it carries:
//! the node's word is not needed to believe it, and a node that serves evidence that
//! proves nothing is caught.

use anyhow::Context as _;
use bb_cli::{EXIT_OK, EXIT_USER_ERROR, Output};
use bb_core::{Canonical, Evidence};
use bb_rpc::pb::{GetSlashingResponse, SlashingEvidence};
use serde::Serialize;

use crate::table::{self, opt, short_addr};
use crate::target::Target;

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    pub offender: String,
    pub slot: u64,
    pub kind: String,
    pub source: String,
    pub first_seen_ms: u64,
    /// The rooted block that recorded the offense on chain.
    pub recorded_in_slot: Option<u64>,
    /// The evidence decodes, proves its offense with its own signatures, and the node's
    /// fields match what it proves.
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PenaltyRow {
    pub offender: String,
    pub epoch: u64,
    pub old_stake: u64,
    pub new_stake: u64,
}

#[derive(Debug, Serialize)]
pub struct SlashingReport {
    pub node: String,
    pub slash_penalty_bps: u32,
    pub evidence: Vec<EvidenceRow>,
    pub penalties: Vec<PenaltyRow>,
    pub invalid_evidence: usize,
}

/// Decodes and checks one piece of evidence; the row shows what the evidence proves when
/// it does.
pub fn check_evidence(info: &SlashingEvidence) -> EvidenceRow {
    let mut row = EvidenceRow {
        offender: info.offender.clone(),
        slot: info.slot,
        kind: info.kind.clone(),
        source: info.source.clone(),
        first_seen_ms: info.first_seen_ms,
        recorded_in_slot: info.recorded_in_slot,
        verified: false,
        problem: None,
    };
    let evidence = match Evidence::from_bytes(&info.evidence) {
        Ok(e) => e,
        Err(e) => {
            row.problem = Some(format!("does not decode: {e}"));
            return row;
        }
    };
    let offense = match bb_runtime::verify_evidence(&evidence) {
        Ok(o) => o,
        Err(e) => {
            row.problem = Some(format!("proves nothing: {e}"));
            return row;
        }
    };
    let (offender, kind) = (offense.offender.to_address(), offense.kind.name());
    let mut differ = Vec::new();
    if offender != info.offender {
        differ.push("offender");
    }
    if offense.slot != info.slot {
        differ.push("slot");
    }
    if kind != info.kind {
        differ.push("kind");
    }
    row.offender = offender;
    row.slot = offense.slot;
    row.kind = kind.to_string();
    if differ.is_empty() {
        row.verified = true;
    } else {
        row.problem = Some(format!(
            "the node's {} differ from what the evidence proves",
            differ.join(", ")
        ));
    }
    row
}

pub fn report(node: String, answer: &GetSlashingResponse) -> SlashingReport {
    let evidence: Vec<EvidenceRow> = answer.evidence.iter().map(check_evidence).collect();
    SlashingReport {
        node,
        slash_penalty_bps: answer.slash_penalty_bps,
        invalid_evidence: evidence.iter().filter(|e| !e.verified).count(),
        evidence,
        penalties: answer
            .penalties
            .iter()
            .map(|p| PenaltyRow {
                offender: p.offender.clone(),
                epoch: p.epoch,
                old_stake: p.old_stake,
                new_stake: p.new_stake,
            })
            .collect(),
    }
}

pub async fn run(out: Output, target: &Target, limit: u32) -> anyhow::Result<u8> {
    let client = target.connect().await?;
    let answer = client.slashing(limit).await.context("slashing records")?;
    let report = report(target.selected.label(), &answer);
    out.emit(&report, || render(&report));
    if report.invalid_evidence > 0 {
        eprintln!(
            "error: {} of {} pieces of evidence failed verification",
            report.invalid_evidence,
            report.evidence.len()
        );
        return Ok(EXIT_USER_ERROR);
    }
    Ok(EXIT_OK)
}

pub fn render(r: &SlashingReport) -> String {
    let cut = format!("{:.1}%", f64::from(r.slash_penalty_bps) / 100.0);
    if r.evidence.is_empty() && r.penalties.is_empty() {
        return format!(
            "{} holds no slashing evidence and its chain applied no penalties (a penalty cuts {cut} of the offender's stake)",
            r.node
        );
    }
    let mut text = format!("{}: {} pieces of evidence\n", r.node, r.evidence.len());
    let mut t = table::table(
        &[
            "offender",
            "slot",
            "kind",
            "learned by",
            "recorded in",
            "proof",
        ],
        &[1, 4],
    );
    for e in &r.evidence {
        t.add_row(vec![
            short_addr(&e.offender),
            e.slot.to_string(),
            e.kind.clone(),
            e.source.clone(),
            opt(e.recorded_in_slot),
            match &e.problem {
                Some(p) => format!("BAD: {p}"),
                None => "ok".into(),
            },
        ]);
    }
    text.push_str(&t.to_string());
    text.push_str(&format!(
        "\n\npenalties (each cuts {cut} of the offender's stake at an epoch boundary):\n"
    ));
    if r.penalties.is_empty() {
        text.push_str("none applied yet");
    } else {
        let mut t = table::table(
            &["offender", "epoch", "stake before", "stake after"],
            &[1, 2, 3],
        );
        for p in &r.penalties {
            t.add_row(vec![
                short_addr(&p.offender),
                p.epoch.to_string(),
                p.old_stake.to_string(),
                p.new_stake.to_string(),
            ]);
        }
        text.push_str(&t.to_string());
    }
    text
}
