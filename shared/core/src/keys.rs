//! Ed25519 identities: public keys and their `bb_` addresses, signatures, keypairs,
//! and domain-separated, strict signing and verification (single and batched).
//!
//! Strictness: a signature verifies only if the public key and the signature's `R` are
//! canonical encodings of points outside the small-order subgroup and `s` is a canonical
//! scalar. With those checks no third party can turn one valid signature into a second,
//! different valid signature (or a second encoding of the same key), so a signature can
//! serve as a transaction id and a public key's bytes as an identity. Single and batch
//! verification check the same (cofactored) equation, so they always agree.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, RwLock};

use bincode::{Decode, Encode};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha512};

/// The textual prefix of every address.
pub const ADDRESS_PREFIX: &str = "bb_";

/// What a signature is for. The prefix is signed ahead of the message, so a signature
/// made for one kind of message can never be replayed as another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    Transaction,
    Vote,
    Block,
    Shred,
    ContactInfo,
    SlashingEvidence,
    /// Messages signed in tests only; no protocol message uses it.
    Test,
}

impl Domain {
    /// The domain-separation prefix, `bb/<kind>/v1`, followed by a NUL so that no
    /// prefix is a prefix of another.
    pub const fn prefix(self) -> &'static [u8] {
        match self {
            Domain::Transaction => b"bb/tx/v1\0",
            Domain::Vote => b"bb/vote/v1\0",
            Domain::Block => b"bb/block/v1\0",
            Domain::Shred => b"bb/shred/v1\0",
            Domain::ContactInfo => b"bb/contact/v1\0",
            Domain::SlashingEvidence => b"bb/slash/v1\0",
            Domain::Test => b"bb/test/v1\0",
        }
    }

    fn framed(self, message: &[u8]) -> Vec<u8> {
        let prefix = self.prefix();
        let mut framed = Vec::with_capacity(prefix.len() + message.len());
        framed.extend_from_slice(prefix);
        framed.extend_from_slice(message);
        framed
    }
}

/// An Ed25519 public key: a validator's or an account's identity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
pub struct Pubkey(pub [u8; 32]);

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("an address starts with `bb_`")]
    MissingPrefix,
    #[error("not base58 after `bb_`: {0}")]
    Base58(String),
    #[error("decodes to {0} bytes, a public key has 32")]
    WrongLength(usize),
    #[error("not a valid Ed25519 public key: {0}")]
    InvalidKey(KeyError),
}

/// Why 32 bytes are not a usable public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a point on the curve")]
    NotOnCurve,
    #[error("non-canonical point encoding")]
    NonCanonical,
    #[error("small-order (weak) point")]
    SmallOrder,
}

impl Pubkey {
    pub const fn new(bytes: [u8; 32]) -> Self {
        Pubkey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The `bb_...` form people copy and paste.
    pub fn to_address(&self) -> String {
        let mut s = String::with_capacity(ADDRESS_PREFIX.len() + 44);
        s.push_str(ADDRESS_PREFIX);
        s.push_str(&bs58::encode(self.0).into_string());
        s
    }

    /// Short form for logs and tables: `bb_` and the first 6 base58 characters.
    pub fn short(&self) -> String {
        let addr = self.to_address();
        addr.chars().take(ADDRESS_PREFIX.len() + 6).collect()
    }

    /// Checks that the key can verify signatures under the strict rules.
    pub fn validate(&self) -> Result<(), KeyError> {
        strict_point(&self.0).map(|_| ())
    }
}

impl fmt::Display for Pubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_address())
    }
}

impl fmt::Debug for Pubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pubkey({})", self.to_address())
    }
}

impl FromStr for Pubkey {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s
            .strip_prefix(ADDRESS_PREFIX)
            .ok_or(AddressError::MissingPrefix)?;
        // 32 bytes are at most 44 base58 characters; refuse longer input before decoding.
        if body.len() > 44 {
            return Err(AddressError::WrongLength(body.len() * 3 / 4));
        }
        let bytes = bs58::decode(body)
            .into_vec()
            .map_err(|e| AddressError::Base58(e.to_string()))?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| AddressError::WrongLength(bytes.len()))?;
        let key = Pubkey(arr);
        key.validate().map_err(AddressError::InvalidKey)?;
        Ok(key)
    }
}

impl serde::Serialize for Pubkey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_address())
    }
}

impl<'de> serde::Deserialize<'de> for Pubkey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 signature (`R || s`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Signature(pub [u8; 64]);

impl Default for Signature {
    fn default() -> Self {
        Signature([0u8; 64])
    }
}

impl Signature {
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    fn r_bytes(&self) -> [u8; 32] {
        let mut r = [0u8; 32];
        r.copy_from_slice(&self.0[..32]);
        r
    }

    fn s_bytes(&self) -> [u8; 32] {
        let mut s = [0u8; 32];
        s.copy_from_slice(&self.0[32..]);
        s
    }

    /// Short form for logs and tables.
    pub fn short(&self) -> String {
        self.to_string().chars().take(10).collect()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.short())
    }
}

impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.len() > 90 {
            return Err(serde::de::Error::custom("signature string too long"));
        }
        let bytes = bs58::decode(s.as_ref())
            .into_vec()
            .map_err(serde::de::Error::custom)?;
        let arr: [u8; 64] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::custom("a signature has 64 bytes"))?;
        Ok(Signature(arr))
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key rejected: {0}")]
    BadKey(KeyError),
    #[error("signature R rejected: {0}")]
    BadR(KeyError),
    #[error("signature s is not a canonical scalar")]
    NonCanonicalS,
    #[error("signature does not match the message and key")]
    Mismatch,
    #[error("batch has {messages} messages, {signatures} signatures and {keys} keys")]
    LengthMismatch {
        messages: usize,
        signatures: usize,
        keys: usize,
    },
}

/// A signature's parts, decoded and checked once, ready for the verification equation.
struct Prepared {
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    /// k = SHA-512(R || A || domain prefix || message), reduced mod the group order.
    k: Scalar,
}

impl Prepared {
    /// The cofactored equation of one signature: `[8]([s]B - R - [k]A) = 0`.
    fn equation_holds(&self) -> bool {
        let sb_minus_ka =
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &-self.a, &self.s);
        (sb_minus_ka - self.r).mul_by_cofactor().is_identity()
    }
}

/// Whether 32 bytes encode a field element below p = 2^255 - 19 (the sign bit aside).
/// The curve library reduces larger values silently, which would give one point two
/// encodings.
fn y_is_canonical(bytes: &[u8; 32]) -> bool {
    let top = bytes[31] & 0x7f;
    !(top == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

/// Decodes a point under the strict rules.
fn strict_point(bytes: &[u8; 32]) -> Result<EdwardsPoint, KeyError> {
    if !y_is_canonical(bytes) {
        return Err(KeyError::NonCanonical);
    }
    let point = CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or(KeyError::NotOnCurve)?;
    // x = 0 with the sign bit set is the other non-canonical form; both such points
    // (y = 1 and y = -1) are small-order, so the next check refuses them too.
    if point.is_small_order() {
        return Err(KeyError::SmallOrder);
    }
    Ok(point)
}

/// Keys decoded lately, so a key that signs often (a validator's: every vote, shred set
/// and contact) is decompressed once, not once per signature; decompression is a field
/// exponentiation, about a sixth of a single verification. Only keys that passed
/// [`strict_point`] are kept, so a hit gives exactly what decoding would. Bounded: once
/// full it is emptied and fills again with the keys in use.
static DECODED_KEYS: LazyLock<RwLock<HashMap<[u8; 32], EdwardsPoint>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));
const DECODED_KEYS_MAX: usize = 4096;

/// [`strict_point`] for public keys, through [`DECODED_KEYS`].
fn key_point(key: &Pubkey) -> Result<EdwardsPoint, KeyError> {
    if let Ok(cache) = DECODED_KEYS.read()
        && let Some(point) = cache.get(&key.0)
    {
        return Ok(*point);
    }
    let point = strict_point(&key.0)?;
    if let Ok(mut cache) = DECODED_KEYS.write() {
        if cache.len() >= DECODED_KEYS_MAX {
            cache.clear();
        }
        cache.insert(key.0, point);
    }
    Ok(point)
}

fn prepare(
    domain: Domain,
    key: &Pubkey,
    message: &[u8],
    sig: &Signature,
) -> Result<Prepared, SignatureError> {
    let a = key_point(key).map_err(SignatureError::BadKey)?;
    let r_bytes = sig.r_bytes();
    let r = strict_point(&r_bytes).map_err(SignatureError::BadR)?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(sig.s_bytes()))
        .ok_or(SignatureError::NonCanonicalS)?;
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key.0);
    h.update(domain.prefix());
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    Ok(Prepared { a, r, s, k })
}

/// Verifies one signature strictly under a domain.
///
/// The equation is the cofactored one, `[8]([s]B - R - [k]A) = 0`, the same that batch
/// verification checks: with one rule for both, no signature can pass one way and fail
/// the other, so nodes that batch and nodes that do not can never disagree.
pub fn verify(
    domain: Domain,
    key: &Pubkey,
    message: &[u8],
    sig: &Signature,
) -> Result<(), SignatureError> {
    if prepare(domain, key, message, sig)?.equation_holds() {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// One item of a batch: who signed what.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    pub domain: Domain,
    pub key: &'a Pubkey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Verifies many signatures at once, about twice as fast per signature as one by one.
///
/// Returns `Ok(())` only if every signature passes the same strict checks as [`verify`].
/// On failure, returns the indices of the bad ones with the reason. A malformed item (bad
/// key, bad R, non-canonical S) is refused on its own and kept out of the batch, so it
/// costs no more than its decoding; a well-formed signature that does not verify makes
/// the batch fall back to checking its other items one by one (the cost of not batching).
pub fn verify_batch(items: &[SignedMessage<'_>]) -> Result<(), Vec<(usize, SignatureError)>> {
    let mut failures: Vec<(usize, SignatureError)> = Vec::new();
    let mut batch: Vec<(usize, Prepared)> = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        match prepare(it.domain, it.key, it.message, it.signature) {
            Ok(p) => batch.push((i, p)),
            Err(e) => failures.push((i, e)),
        }
    }
    // One item alone: the single equation is the same check at about half the cost of a
    // three-point batch.
    let holds = match batch.as_slice() {
        [] => true,
        [(_, one)] => one.equation_holds(),
        _ => batch_equation_holds(items, &batch),
    };
    if !holds {
        // A failing batch whose items all verify alone has probability 2^-128.
        failures.extend(
            batch
                .iter()
                .filter(|(_, p)| !p.equation_holds())
                .map(|(i, _)| (*i, SignatureError::Mismatch)),
        );
        failures.sort_unstable_by_key(|(i, _)| *i);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// Checks `[8]([sum z_i s_i]B - sum [z_i]R_i - sum [z_i k_i]A_i) = 0` with 128-bit
/// weights z_i derived from every input, so no signer can choose bad items that cancel.
fn batch_equation_holds(items: &[SignedMessage<'_>], batch: &[(usize, Prepared)]) -> bool {
    let mut transcript = Sha512::new();
    transcript.update(b"bb/batch-verify/v1");
    for (i, p) in batch {
        let it = &items[*i];
        transcript.update(it.signature.0);
        transcript.update(it.key.0);
        transcript.update(p.k.as_bytes());
    }
    let seed: [u8; 64] = transcript.finalize().into();
    let mut b_coefficient = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    // One term per distinct key, its coefficients summed: a batch signed by one key (a
    // leader's FEC sets) is a multiscalar multiplication of n + 2 points, not 2n + 1.
    let mut key_terms: HashMap<[u8; 32], usize> = HashMap::new();
    for (n, (i, p)) in batch.iter().enumerate() {
        let it = &items[*i];
        let mut h = Sha512::new();
        h.update(seed);
        h.update((n as u64).to_le_bytes());
        let wide: [u8; 64] = h.finalize().into();
        let mut z_bytes = [0u8; 32];
        z_bytes[..16].copy_from_slice(&wide[..16]);
        let z = Scalar::from_bytes_mod_order(z_bytes);
        b_coefficient += z * p.s;
        scalars.push(-z);
        points.push(p.r);
        match key_terms.entry(it.key.0) {
            Entry::Occupied(term) => scalars[*term.get()] -= z * p.k,
            Entry::Vacant(term) => {
                term.insert(scalars.len());
                scalars.push(-(z * p.k));
                points.push(p.a);
            }
        }
    }
    scalars.push(b_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// A secret key with its public key.
pub struct Keypair {
    signing: SigningKey,
    pubkey: Pubkey,
}

impl Keypair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self::generate_with(&mut rand::rng())
    }

    /// A key from a caller's random source (deterministic in tests and the simulator).
    pub fn generate_with<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_seed(&SigningKey::generate(rng).to_bytes())
    }

    /// The key whose 32-byte secret seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let pubkey = Pubkey(signing.verifying_key().to_bytes());
        Keypair { signing, pubkey }
    }

    pub fn pubkey(&self) -> Pubkey {
        self.pubkey
    }

    /// The secret seed. Handle with care: whoever holds it is this validator.
    pub fn secret_seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn sign(&self, domain: Domain, message: &[u8]) -> Signature {
        Signature(self.signing.sign(&domain.framed(message)).to_bytes())
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Keypair::from_seed(&self.signing.to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "Keypair({})", self.pubkey.to_address())
    }
}

/// The key file format: JSON with the address beside the secret, so a file whose two
/// halves disagree (a damaged or hand-edited file) is caught on load.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    version: u32,
    address: String,
    secret_key: String,
}

/// Largest key file accepted.
pub const MAX_KEY_FILE_BYTES: usize = 4096;

/// Why bytes are not a key file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file is {0} bytes, a key file is under {MAX_KEY_FILE_BYTES}")]
    TooLarge(usize),
    #[error("not a bb key file: {0}")]
    Format(String),
    #[error("unsupported key file version {0} (this build reads 1)")]
    Version(u32),
    #[error("secret key is not 32 base58-encoded bytes")]
    Secret,
    #[error("the address in the file ({stored}) does not match its secret key ({derived})")]
    AddressMismatch { stored: String, derived: String },
}

impl Keypair {
    /// The key file's JSON text.
    pub fn to_key_file_json(&self) -> String {
        let file = KeyFileJson {
            version: 1,
            address: self.pubkey.to_address(),
            secret_key: bs58::encode(self.signing.to_bytes()).into_string(),
        };
        // Plain strings and numbers always serialize.
        serde_json::to_string_pretty(&file).unwrap_or_default() + "\n"
    }

    /// Parses a key file's bytes (untrusted: size-limited, every field checked).
    pub fn from_key_file_json(bytes: &[u8]) -> Result<Keypair, KeyFileError> {
        if bytes.len() > MAX_KEY_FILE_BYTES {
            return Err(KeyFileError::TooLarge(bytes.len()));
        }
        let file: KeyFileJson =
            serde_json::from_slice(bytes).map_err(|e| KeyFileError::Format(e.to_string()))?;
        if file.version != 1 {
            return Err(KeyFileError::Version(file.version));
        }
        if file.secret_key.len() > 64 {
            return Err(KeyFileError::Secret);
        }
        let secret = bs58::decode(&file.secret_key)
            .into_vec()
            .map_err(|_| KeyFileError::Secret)?;
        let seed: [u8; 32] = secret
            .as_slice()
            .try_into()
            .map_err(|_| KeyFileError::Secret)?;
        let keypair = Keypair::from_seed(&seed);
        let derived = keypair.pubkey.to_address();
        if derived != file.address {
            return Err(KeyFileError::AddressMismatch {
                stored: file.address,
                derived,
            });
        }
        Ok(keypair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Keypair {
        Keypair::from_seed(&[n; 32])
    }

    #[test]
    fn key_file_round_trip_and_damage() {
        let k = key(9);
        let json = k.to_key_file_json();
        assert_eq!(
            Keypair::from_key_file_json(json.as_bytes())
                .unwrap()
                .pubkey(),
            k.pubkey()
        );
        let other = key(10).pubkey().to_address();
        let swapped = json.replace(&k.pubkey().to_address(), &other);
        assert!(matches!(
            Keypair::from_key_file_json(swapped.as_bytes()),
            Err(KeyFileError::AddressMismatch { .. })
        ));
        assert!(matches!(
            Keypair::from_key_file_json(b"not json"),
            Err(KeyFileError::Format(_))
        ));
        assert!(matches!(
            Keypair::from_key_file_json(&[b' '; 5000]),
            Err(KeyFileError::TooLarge(5000))
        ));
    }

    #[test]
    fn address_round_trip() {
        let k = key(1).pubkey();
        let addr = k.to_address();
        assert!(addr.starts_with("bb_"));
        assert_eq!(addr.parse::<Pubkey>(), Ok(k));
    }

    #[test]
    fn address_parse_errors_say_why() {
        assert_eq!("xx_abc".parse::<Pubkey>(), Err(AddressError::MissingPrefix));
        assert!(matches!(
            "bb_0OIl".parse::<Pubkey>(),
            Err(AddressError::Base58(_))
        ));
        assert_eq!("bb_2g".parse::<Pubkey>(), Err(AddressError::WrongLength(1)));
        let identity_point = bs58::encode({
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        })
        .into_string();
        assert_eq!(
            format!("bb_{identity_point}").parse::<Pubkey>(),
            Err(AddressError::InvalidKey(KeyError::SmallOrder))
        );
    }

    #[test]
    fn sign_verify_and_domain_separation() {
        let k = key(2);
        let sig = k.sign(Domain::Vote, b"slot 5");
        assert_eq!(verify(Domain::Vote, &k.pubkey(), b"slot 5", &sig), Ok(()));
        assert_eq!(
            verify(Domain::Transaction, &k.pubkey(), b"slot 5", &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Domain::Vote, &k.pubkey(), b"slot 6", &sig),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malleated_s_is_rejected_single_and_batch() {
        // s + L is the classic malleation: same point equation, different bytes.
        let k = key(3);
        let msg = b"pay 10";
        let sig = k.sign(Domain::Test, msg);
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(sig.s_bytes())).unwrap();
        let l_plus_s = {
            // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
            let l: [u8; 32] = [
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
                0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ];
            let mut out = [0u8; 32];
            let mut carry = 0u16;
            let sb = s.to_bytes();
            for i in 0..32 {
                let v = sb[i] as u16 + l[i] as u16 + carry;
                out[i] = v as u8;
                carry = v >> 8;
            }
            out
        };
        let mut bad = sig;
        bad.0[32..].copy_from_slice(&l_plus_s);
        assert_ne!(bad, sig);
        assert_eq!(
            verify(Domain::Test, &k.pubkey(), msg, &bad),
            Err(SignatureError::NonCanonicalS)
        );
        let pk = k.pubkey();
        let items = [SignedMessage {
            domain: Domain::Test,
            key: &pk,
            message: msg,
            signature: &bad,
        }];
        assert!(verify_batch(&items).is_err());
    }

    #[test]
    fn small_order_r_and_key_are_rejected() {
        // The identity point as R and as key: the textbook forgery for lax verifiers.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = Signature([0u8; 64]);
        sig.0[..32].copy_from_slice(&identity);
        let pk = Pubkey(identity);
        assert_eq!(
            verify(Domain::Test, &pk, b"anything", &sig),
            Err(SignatureError::BadKey(KeyError::SmallOrder))
        );
        let real = key(4).pubkey();
        assert_eq!(
            verify(Domain::Test, &real, b"anything", &sig),
            Err(SignatureError::BadR(KeyError::SmallOrder))
        );
    }

    #[test]
    fn non_canonical_key_encoding_is_rejected() {
        // y = p + 1 is a non-canonical encoding of y = 1... pick a valid point instead:
        // flipping the sign bit of the basepoint's x gives a different, valid key, while
        // y >= p encodings must be refused.
        let b = ED25519_BASEPOINT_POINT.compress().to_bytes();
        assert_eq!(Pubkey(b).validate(), Ok(()));
        let mut y_ge_p = [0xffu8; 32];
        y_ge_p[31] = 0x7f; // y = 2^255 - 1 >= p
        assert!(Pubkey(y_ge_p).validate().is_err());
    }

    #[test]
    fn batch_reports_the_bad_indices() {
        let keys: Vec<Keypair> = (0..8).map(key).collect();
        let pks: Vec<Pubkey> = keys.iter().map(Keypair::pubkey).collect();
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = keys
            .iter()
            .zip(&msgs)
            .map(|(k, m)| k.sign(Domain::Transaction, m))
            .collect();
        let items = |sigs: &[Signature]| -> Vec<(usize, SignatureError)> {
            let items: Vec<SignedMessage<'_>> = (0..8)
                .map(|i| SignedMessage {
                    domain: Domain::Transaction,
                    key: &pks[i],
                    message: &msgs[i],
                    signature: &sigs[i],
                })
                .collect();
            verify_batch(&items).err().unwrap_or_default()
        };
        assert!(items(&sigs).is_empty());
        sigs.swap(2, 5);
        let bad: Vec<usize> = items(&sigs).into_iter().map(|(i, _)| i).collect();
        assert_eq!(bad, vec![2, 5]);
    }

    #[test]
    fn a_malformed_item_is_refused_alone_and_the_rest_still_batch() {
        let signer = key(6);
        let pk = signer.pubkey();
        let msgs: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 20]).collect();
        let mut sigs: Vec<Signature> = msgs.iter().map(|m| signer.sign(Domain::Test, m)).collect();
        // S = 2^256 - 1 is not canonical: refused by decoding, before any curve work.
        sigs[2].0[32..].copy_from_slice(&[0xff; 32]);
        let items: Vec<SignedMessage<'_>> = (0..6)
            .map(|i| SignedMessage {
                domain: Domain::Test,
                key: &pk,
                message: &msgs[i],
                signature: &sigs[i],
            })
            .collect();
        assert_eq!(
            verify_batch(&items),
            Err(vec![(2, SignatureError::NonCanonicalS)])
        );
    }

    #[test]
    fn batch_of_one_key_and_a_few_others_finds_each_bad_signature() {
        // Mostly one signer (its terms are merged into one point), two others between.
        let signers: Vec<Keypair> = (0..12)
            .map(|i| key(if i % 5 == 4 { 20 + i } else { 3 }))
            .collect();
        let pks: Vec<Pubkey> = signers.iter().map(Keypair::pubkey).collect();
        let msgs: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 44]).collect();
        let good: Vec<Signature> = signers
            .iter()
            .zip(&msgs)
            .map(|(k, m)| k.sign(Domain::Shred, m))
            .collect();
        let run = |sigs: &[Signature]| -> Vec<usize> {
            let items: Vec<SignedMessage<'_>> = (0..12)
                .map(|i| SignedMessage {
                    domain: Domain::Shred,
                    key: &pks[i],
                    message: &msgs[i],
                    signature: &sigs[i],
                })
                .collect();
            verify_batch(&items)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        };
        assert!(run(&good).is_empty());
        for bad in [0, 4, 7, 11] {
            let mut sigs = good.clone();
            // A valid signature by the same key over another message.
            sigs[bad] = signers[bad].sign(Domain::Shred, b"something else");
            assert_eq!(run(&sigs), vec![bad], "bad signature at {bad}");
        }
    }

    #[test]
    fn decoded_keys_give_the_same_verdicts_as_decoding_and_stay_bounded() {
        let signer = key(9);
        let pk = signer.pubkey();
        let sig = signer.sign(Domain::Test, b"cached");
        // First use decodes and keeps the key; later ones hit the cache: same verdicts.
        for _ in 0..3 {
            assert_eq!(verify(Domain::Test, &pk, b"cached", &sig), Ok(()));
            assert_eq!(
                verify(Domain::Test, &pk, b"other", &sig),
                Err(SignatureError::Mismatch)
            );
        }
        // A bad key is refused every time: refusals are never cached.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for _ in 0..2 {
            assert_eq!(key_point(&Pubkey(identity)), Err(KeyError::SmallOrder));
        }
        // Past the bound the cache starts over, and verdicts do not change.
        for i in 0..(DECODED_KEYS_MAX as u64 + 10) {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            seed[8] = 0xAA;
            let k = Keypair::from_seed(&seed).pubkey();
            assert_eq!(key_point(&k).map(|p| p.compress().to_bytes()), Ok(k.0));
        }
        assert!(DECODED_KEYS.read().map(|c| c.len()).unwrap_or(0) <= DECODED_KEYS_MAX);
        assert_eq!(verify(Domain::Test, &pk, b"cached", &sig), Ok(()));
    }
}
