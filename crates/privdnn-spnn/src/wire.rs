//! The split-training protocol on `privdnn-net` frames (magic `PDSP`, version 1). Payloads are
//! the codec encoding of [`crate::messages`], so a frame is the in-process harness's message
//! plus the 12-byte header.
//!
//! Connections: holder A → server, holder B → server, holder A → holder B, dealer → holder A,
//! dealer → holder B. Every connection opens with the dialer's [`Hello`]; the listener answers
//! with its own (both sides check the settings digest and the epochs already done). Then, per
//! step: A ↔ B one [`Opening`] each way (A sends first), dealer → B one [`Correction`],
//! holders → server [`Activations`], server → B [`Features`], B → server [`FeatureGrad`],
//! server → holders [`Gradient`]. [`Msg::Done`] ends a connection after the last epoch.

use privdnn_mpc::MaskKey;
use privdnn_net::{
    ERROR_KIND, ErrorFrame, NetError, Protocol, WireMessage, decode_bounded, decode_empty, encode,
};
use serde::{Deserialize, Serialize};

use crate::messages::{Activations, Correction, FeatureGrad, Features, Gradient, Opening};

/// The roles of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Holder A: the left columns.
    HolderA,
    /// Holder B: the right columns, the labels and the top layer.
    HolderB,
    /// The server: the layers between conv1 and the top layer.
    Server,
    /// The triple dealer.
    Dealer,
}

impl Role {
    /// Name in messages and file names.
    pub fn name(self) -> &'static str {
        match self {
            Role::HolderA => "holder-a",
            Role::HolderB => "holder-b",
            Role::Server => "server",
            Role::Dealer => "dealer",
        }
    }
}

/// First message on every connection, both ways.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Who speaks.
    pub role: Role,
    /// Digest of the run's settings (both ends must train the same thing).
    pub settings: u64,
    /// Epochs this party has finished (from its checkpoint; 0 when fresh).
    pub epochs_done: u64,
}

/// A 32-byte key handed over once: holder A's pair key to holder B, a dealer seed to a holder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyGift {
    /// The key.
    pub key: MaskKey,
}

/// One message of the split-training protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    /// Kind 1: hello.
    Hello(Hello),
    /// Kind 2: a key handed over at setup.
    Key(KeyGift),
    /// Kind 3: Beaver openings (holder ↔ holder).
    Opening(Opening),
    /// Kind 4: the dealer's correction (dealer → holder B).
    Correction(Correction),
    /// Kind 5: z1 shares (holder → server).
    Activations(Activations),
    /// Kind 6: the server's top features (server → holder B).
    Features(Features),
    /// Kind 7: ∂loss/∂features (holder B → server).
    FeatureGrad(FeatureGrad),
    /// Kind 8: δ = ∂loss/∂z1 (server → holders).
    Gradient(Gradient),
    /// Kind 9: the run is over.
    Done,
    /// Either way: error, then close.
    Error(ErrorFrame),
}

const NAMES: [&str; 9] = [
    "hello",
    "key",
    "opening",
    "correction",
    "activations",
    "features",
    "feature gradient",
    "gradient",
    "done",
];

impl WireMessage for Msg {
    const PROTOCOL: Protocol = Protocol {
        name: "privdnn-spnn",
        magic: *b"PDSP",
        version: 1,
    };

    fn kind(&self) -> u16 {
        match self {
            Msg::Hello(_) => 1,
            Msg::Key(_) => 2,
            Msg::Opening(_) => 3,
            Msg::Correction(_) => 4,
            Msg::Activations(_) => 5,
            Msg::Features(_) => 6,
            Msg::FeatureGrad(_) => 7,
            Msg::Gradient(_) => 8,
            Msg::Done => 9,
            Msg::Error(_) => ERROR_KIND,
        }
    }

    fn kind_name(kind: u16) -> Option<&'static str> {
        match kind {
            ERROR_KIND => Some("error"),
            k => NAMES.get(usize::from(k).checked_sub(1)?).copied(),
        }
    }

    fn payload(&self) -> Result<Vec<u8>, NetError> {
        match self {
            Msg::Hello(m) => encode(m),
            Msg::Key(m) => encode(m),
            Msg::Opening(m) => encode(m),
            Msg::Correction(m) => encode(m),
            Msg::Activations(m) => encode(m),
            Msg::Features(m) => encode(m),
            Msg::FeatureGrad(m) => encode(m),
            Msg::Gradient(m) => encode(m),
            Msg::Done => Ok(Vec::new()),
            Msg::Error(e) => encode(e),
        }
    }

    fn decode(kind: u16, payload: &[u8]) -> Result<Self, NetError> {
        let what = Self::kind_name(kind).ok_or(NetError::UnknownKind {
            protocol: "privdnn-spnn",
            kind,
        })?;
        Ok(match kind {
            1 => Msg::Hello(decode_bounded(payload, what)?),
            2 => Msg::Key(decode_bounded(payload, what)?),
            3 => Msg::Opening(decode_bounded(payload, what)?),
            4 => Msg::Correction(decode_bounded(payload, what)?),
            5 => Msg::Activations(decode_bounded(payload, what)?),
            6 => Msg::Features(decode_bounded(payload, what)?),
            7 => Msg::FeatureGrad(decode_bounded(payload, what)?),
            8 => Msg::Gradient(decode_bounded(payload, what)?),
            9 => {
                decode_empty(payload, what)?;
                Msg::Done
            }
            _ => Msg::Error(decode_bounded(payload, what)?),
        })
    }

    fn error(frame: ErrorFrame) -> Self {
        Msg::Error(frame)
    }

    fn as_error(&self) -> Option<&ErrorFrame> {
        match self {
            Msg::Error(e) => Some(e),
            _ => None,
        }
    }
}

/// A message type carried by one [`Msg`] variant.
pub trait Expect: Sized {
    /// Name (errors).
    const WHAT: &'static str;
    /// The payload when `m` is this variant, else `m` back.
    fn pick(m: Msg) -> Result<Self, Box<Msg>>;
}

macro_rules! expect {
    ($($variant:ident => $what:literal),* $(,)?) => {$(
        impl Expect for $variant {
            const WHAT: &'static str = $what;
            fn pick(m: Msg) -> Result<Self, Box<Msg>> {
                match m {
                    Msg::$variant(v) => Ok(v),
                    other => Err(Box::new(other)),
                }
            }
        }
    )*};
}

expect!(
    Hello => "hello",
    Opening => "opening",
    Correction => "correction",
    Activations => "activations",
    Features => "features",
    FeatureGrad => "feature gradient",
    Gradient => "gradient",
);

impl Expect for KeyGift {
    const WHAT: &'static str = "key";
    fn pick(m: Msg) -> Result<Self, Box<Msg>> {
        match m {
            Msg::Key(v) => Ok(v),
            other => Err(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_unknown_kinds_are_refused() {
        let msgs = [
            Msg::Hello(Hello {
                role: Role::HolderB,
                settings: 7,
                epochs_done: 2,
            }),
            Msg::Key(KeyGift {
                key: MaskKey([3; 32]),
            }),
            Msg::Done,
        ];
        for m in msgs {
            let p = m.payload().expect("payload");
            assert_eq!(Msg::decode(m.kind(), &p).expect("decode"), m);
        }
        assert!(Msg::decode(42, &[]).is_err());
        assert!(Msg::decode(9, &[1]).is_err());
        assert_eq!(Msg::kind_name(8), Some("gradient"));
    }
}
