//! Transactions: signed transfers of balance from one account to another.

use bincode::{Decode, Encode};
use rayon::prelude::*;

use crate::encoding::{Canonical, encode_body};
use crate::hash::Hash;
use crate::keys::{self, Domain, Keypair, Pubkey, Signature, SignatureError, SignedMessage};

/// What the sender signs: move `amount` from `from` to `to`, paying `fee` to the leader.
/// `recent_blockhash` ties the transaction to a recent block, so it expires and cannot be
/// replayed on another fork or network later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Transfer {
    pub from: Pubkey,
    pub to: Pubkey,
    pub amount: u64,
    pub fee: u64,
    pub recent_blockhash: Hash,
}

/// A transfer with the sender's signature. The signature is also the transaction's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Transaction {
    pub transfer: Transfer,
    pub signature: Signature,
}

impl Canonical for Transaction {
    const NAME: &'static str = "transaction";
    const MAX_SIZE: usize = 256;
}

/// Size of one encoded transaction inside a sequence (no version byte).
pub const TRANSACTION_WIRE_SIZE: usize = 32 + 32 + 8 + 8 + 32 + 64;

impl Transfer {
    /// The signed bytes.
    pub fn message_bytes(&self) -> Vec<u8> {
        encode_body(self)
    }
}

impl Transaction {
    /// Builds and signs a transfer from `sender`'s account.
    pub fn transfer(
        sender: &Keypair,
        to: Pubkey,
        amount: u64,
        fee: u64,
        recent_blockhash: Hash,
    ) -> Self {
        let transfer = Transfer {
            from: sender.pubkey(),
            to,
            amount,
            fee,
            recent_blockhash,
        };
        let signature = sender.sign(Domain::Transaction, &transfer.message_bytes());
        Transaction {
            transfer,
            signature,
        }
    }

    /// The transaction id.
    pub fn id(&self) -> Signature {
        self.signature
    }

    /// Checks the sender's signature strictly.
    pub fn verify(&self) -> Result<(), SignatureError> {
        keys::verify(
            Domain::Transaction,
            &self.transfer.from,
            &self.transfer.message_bytes(),
            &self.signature,
        )
    }
}

/// Verifies many transactions with batched signature checks, split across all cores.
/// Returns the indices of the transactions whose signature fails, in order.
pub fn verify_transactions(txs: &[Transaction]) -> Result<(), Vec<usize>> {
    const CHUNK: usize = 128;
    let mut bad: Vec<usize> = txs
        .par_chunks(CHUNK)
        .enumerate()
        .flat_map_iter(|(chunk_index, chunk)| {
            let messages: Vec<Vec<u8>> = chunk.iter().map(|t| t.transfer.message_bytes()).collect();
            let items: Vec<SignedMessage<'_>> = chunk
                .iter()
                .zip(&messages)
                .map(|(t, m)| SignedMessage {
                    domain: Domain::Transaction,
                    key: &t.transfer.from,
                    message: m,
                    signature: &t.signature,
                })
                .collect();
            let failed: Vec<usize> = match keys::verify_batch(&items) {
                Ok(()) => Vec::new(),
                Err(list) => list
                    .into_iter()
                    .map(|(i, _)| chunk_index * CHUNK + i)
                    .collect(),
            };
            failed
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        bad.sort_unstable();
        Err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash;

    #[test]
    fn signed_transfer_verifies_and_tampering_breaks_it() {
        let alice = Keypair::from_seed(&[1; 32]);
        let bob = Keypair::from_seed(&[2; 32]).pubkey();
        let tx = Transaction::transfer(&alice, bob, 10, 1, hash(b"recent"));
        assert_eq!(tx.verify(), Ok(()));
        let mut forged = tx;
        forged.transfer.amount = 1_000;
        assert_eq!(forged.verify(), Err(SignatureError::Mismatch));
    }

    #[test]
    fn encoded_size_is_fixed() {
        let alice = Keypair::from_seed(&[1; 32]);
        let tx = Transaction::transfer(&alice, alice.pubkey(), 1, 0, Hash::ZERO);
        assert_eq!(tx.to_bytes().len(), 1 + TRANSACTION_WIRE_SIZE);
        assert_eq!(Transaction::from_bytes(&tx.to_bytes()), Ok(tx));
    }

    #[test]
    fn batch_names_each_forged_transaction() {
        let keys: Vec<Keypair> = (0..300u16)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..2].copy_from_slice(&i.to_le_bytes());
                Keypair::from_seed(&seed)
            })
            .collect();
        let mut txs: Vec<Transaction> = keys
            .iter()
            .map(|k| Transaction::transfer(k, k.pubkey(), 5, 1, Hash::ZERO))
            .collect();
        assert_eq!(verify_transactions(&txs), Ok(()));
        txs[7].transfer.amount = 6;
        txs[200].transfer.fee = 0;
        assert_eq!(verify_transactions(&txs), Err(vec![7, 200]));
    }
}
