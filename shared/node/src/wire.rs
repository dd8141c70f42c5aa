//! Messages between validators beyond blocks and votes: signed contact info (gossip),
//! repair requests and answers, and forwarded transactions (request-response).

use bb_core::{
    Block, Canonical, Domain, Hash, Keypair, Pubkey, Signature, SignatureError, Slot, Transaction,
};
use bincode::{Decode, Encode};

/// Where and what a validator is, signed by it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ContactInfo {
    pub identity: Pubkey,
    pub genesis_hash: Hash,
    /// libp2p listen address (a multiaddr string).
    pub gossip_addr: String,
    /// UDP address for Turbine shreds.
    pub shred_addr: String,
    /// gRPC address.
    pub rpc_addr: String,
    pub version: String,
    /// The sender's newest processed slot.
    pub latest_slot: Slot,
    /// The sender's wall clock, ms since the Unix epoch (to spot clock skew).
    pub wallclock_ms: u64,
}

/// Contact info with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SignedContactInfo {
    pub info: ContactInfo,
    pub signature: Signature,
}

impl Canonical for SignedContactInfo {
    const NAME: &'static str = "contact info";
    const MAX_SIZE: usize = 2048;
}

impl ContactInfo {
    pub fn sign(self, key: &Keypair) -> SignedContactInfo {
        let signature = key.sign(Domain::ContactInfo, &bb_core::encoding::encode_body(&self));
        SignedContactInfo {
            info: self,
            signature,
        }
    }
}

impl SignedContactInfo {
    pub fn verify(&self) -> Result<(), SignatureError> {
        bb_core::verify(
            Domain::ContactInfo,
            &self.info.identity,
            &bb_core::encoding::encode_body(&self.info),
            &self.signature,
        )
    }
}

/// What one validator asks another over request-response.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Request {
    /// The block of `slot` and up to `count - 1` of its ancestors (an orphan's parents).
    Ancestors { slot: Slot, count: u32 },
    /// Blocks in `from..=to` (at most [`MAX_RANGE`]).
    Range { from: Slot, to: Slot },
    /// Transactions for the leader (Gulf Stream).
    Forward(Vec<Transaction>),
}

impl Canonical for Request {
    const NAME: &'static str = "request";
    const MAX_SIZE: usize = 64 * 1024;
}

/// Most blocks one answer carries.
pub const MAX_RANGE: u64 = 64;

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Response {
    /// Canonical block encodings, oldest first.
    Blocks(Vec<Vec<u8>>),
    /// How many forwarded transactions the leader took: the first `n`, in order. Fewer
    /// than sent means its pending queue is full (back-pressure); the rest were not kept.
    Accepted(u32),
}

impl Canonical for Response {
    const NAME: &'static str = "response";
    const MAX_SIZE: usize = 80 << 20;
}

impl Response {
    /// Decodes the blocks of an answer, dropping any that do not decode.
    pub fn blocks(self) -> Vec<Block> {
        match self {
            Response::Blocks(list) => list
                .iter()
                .filter_map(|b| Block::from_bytes(b).ok())
                .collect(),
            Response::Accepted(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_info_is_signed_and_checked() {
        let k = Keypair::from_seed(&[5; 32]);
        let info = ContactInfo {
            identity: k.pubkey(),
            genesis_hash: Hash([1; 32]),
            gossip_addr: "/ip4/127.0.0.1/tcp/1".into(),
            shred_addr: "127.0.0.1:2".into(),
            rpc_addr: "127.0.0.1:3".into(),
            version: "0.1.0".into(),
            latest_slot: 7,
            wallclock_ms: 1,
        }
        .sign(&k);
        assert_eq!(info.verify(), Ok(()));
        let back = SignedContactInfo::from_bytes(&info.to_bytes()).unwrap();
        assert_eq!(back, info);
        let mut forged = info;
        forged.info.shred_addr = "10.0.0.1:2".into();
        assert!(forged.verify().is_err());
    }

    #[test]
    fn requests_round_trip_and_garbage_is_an_error() {
        let r = Request::Ancestors { slot: 9, count: 32 };
        assert_eq!(Request::from_bytes(&r.to_bytes()), Ok(r));
        assert!(Request::from_bytes(&[1, 9, 9, 9]).is_err());
        assert!(Response::from_bytes(&[]).is_err());
    }
}
