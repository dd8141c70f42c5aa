//! The validator's Ed25519 key as its libp2p identity.
//!
//! A libp2p `PeerId` for an Ed25519 key is the identity multihash of the protobuf-encoded
//! public key, so the key can be read back out of the id: a connection authenticated by
//! Noise to a `PeerId` is a connection to the validator with that [`Pubkey`].

use bb_core::Pubkey;
use libp2p::PeerId;
use libp2p::identity::{self, PublicKey};

use crate::error::NetError;

/// Multihash code of the identity "hash" (the bytes themselves).
const IDENTITY_MULTIHASH: u64 = 0;

/// The libp2p keypair for the validator whose Ed25519 secret seed is `seed`.
pub fn keypair_from_seed(seed: &[u8; 32]) -> Result<identity::Keypair, NetError> {
    // `ed25519_from_bytes` zeroizes the buffer it is given: hand it a copy.
    let mut copy = *seed;
    identity::Keypair::ed25519_from_bytes(&mut copy).map_err(|e| NetError::Identity(e.to_string()))
}

/// The validator public key a `PeerId` names, if it names an Ed25519 key.
pub fn pubkey_of(peer: &PeerId) -> Option<Pubkey> {
    let multihash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    let key = PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed25519 = key.try_into_ed25519().ok()?;
    Some(Pubkey(ed25519.to_bytes()))
}

/// The `PeerId` of the validator with public key `pubkey`; `None` if the bytes are not
/// an Ed25519 point.
pub fn peer_id_of(pubkey: &Pubkey) -> Option<PeerId> {
    let ed25519 = identity::ed25519::PublicKey::try_from_bytes(pubkey.as_bytes()).ok()?;
    Some(PublicKey::from(ed25519).to_peer_id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::Keypair;

    #[test]
    fn pubkey_and_peer_id_round_trip() {
        for n in 0..16u8 {
            let validator = Keypair::from_seed(&[n; 32]);
            let libp2p_key = keypair_from_seed(&validator.secret_seed()).unwrap();
            let peer = libp2p_key.public().to_peer_id();
            assert_eq!(pubkey_of(&peer), Some(validator.pubkey()));
            assert_eq!(peer_id_of(&validator.pubkey()), Some(peer));
        }
    }

    #[test]
    fn a_non_ed25519_peer_id_has_no_pubkey() {
        // A random PeerId is a SHA-256 multihash, not an identity one.
        assert_eq!(pubkey_of(&PeerId::random()), None);
    }
}
