//! Per-run metrics in the shape the comparison table reads (as `privdnn-baselines`' edge report):
//! accuracy and exact-match rate against the integer shadow, online / offline / setup bytes per
//! link, flights, each party's compute seconds and the client's latency per image, plus the
//! analytic count. A TCP deployment fills the same struct from its processes.

use privdnn_mpc::{IntModel, shadow};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::cost::{Analytic, LinkBytes, analytic};
use crate::harness::{Harness, OfflineBytes, PartySeconds, SetupBytes};

/// What each party learns (fixed text for the table).
pub const LEARNS: [(&str, &str); 5] = [
    (
        "server1",
        "shapes, op counts, timing and the public requantisation constants; openings x − A \
         masked by the dealer's fresh A, OT flip bits: nothing about weights, inputs, \
         activations or logits",
    ),
    (
        "server2",
        "as server 1, plus garbled tables and labels and each gadget's output g(x) + r masked by \
         server 1's fresh r",
    ),
    (
        "dealer",
        "the triples, square pairs and random OTs it made (extra non-colluding party); never an \
         opened value, weight or input. Colluding with a server it learns everything",
    ),
    (
        "client",
        "the logits of its own queries (model extraction by queries remains)",
    ),
    (
        "owner",
        "everything it set up; nothing about queries (offline after setup)",
    ),
];

/// Metrics of a run over some images.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// System name.
    pub system: String,
    /// Threat model (fixed text).
    pub threat_model: String,
    /// Images run.
    pub images: usize,
    /// Protocol accuracy in percent (argmax against the labels given).
    pub protocol_accuracy: f64,
    /// Integer-shadow accuracy in percent.
    pub integer_accuracy: f64,
    /// Percent of images whose logits equal the shadow's bit for bit.
    pub exact_match_rate: f64,
    /// Mean online bytes per image, per link.
    pub online_per_image: LinkBytes,
    /// Mean offline (dealer) bytes per image.
    pub offline_per_image: OfflineBytes,
    /// One-time setup bytes.
    pub setup: SetupBytes,
    /// Online flights per image.
    pub rounds_per_image: u64,
    /// Mean compute seconds per image and party.
    pub seconds_per_image: PartySeconds,
    /// Median client latency per image (single image, all roles in one thread), seconds.
    pub latency_median_seconds: f64,
    /// The analytic count of one query.
    pub analytic: Analytic,
}

/// Runs `images` (raw bytes, with `labels`) through `harness` and collects the metrics.
pub fn run(
    harness: &mut Harness,
    model: &IntModel,
    images: &[&[u8]],
    labels: &[usize],
) -> Result<RunMetrics> {
    let mut m = RunMetrics {
        system:
            "two non-colluding servers (Li et al., IEEE TDSC 2022), as reconstructed; dealer mode"
                .into(),
        threat_model: "semi-honest; server 1, server 2 and the dealer pairwise non-colluding"
            .into(),
        images: images.len(),
        setup: harness.setup,
        analytic: analytic(model)?,
        ..RunMetrics::default()
    };
    let (mut exact, mut correct, mut int_correct, mut lat) = (0, 0, 0, Vec::new());
    let mut secs = PartySeconds::default();
    for (i, raw) in images.iter().enumerate() {
        let t = std::time::Instant::now();
        let out = harness.infer(raw)?;
        lat.push(t.elapsed().as_secs_f64());
        let sh = shadow::logits(model, raw)?;
        exact += usize::from(out.logits == sh);
        let label = labels.get(i).copied();
        correct += usize::from(Some(shadow::argmax(&out.logits)) == label);
        int_correct += usize::from(Some(shadow::argmax(&sh)) == label);
        m.online_per_image = m.online_per_image.plus(&out.online);
        m.offline_per_image.dealer_s1 += out.offline.dealer_s1;
        m.offline_per_image.dealer_s2 += out.offline.dealer_s2;
        m.rounds_per_image = out.rounds;
        secs.client += out.seconds.client;
        secs.s1 += out.seconds.s1;
        secs.s2 += out.seconds.s2;
        secs.dealer += out.seconds.dealer;
    }
    let n = images.len().max(1);
    let (nf, nu) = (n as f64, n as u64);
    let pct = |c: usize| 100.0 * c as f64 / nf;
    (m.exact_match_rate, m.protocol_accuracy, m.integer_accuracy) =
        (pct(exact), pct(correct), pct(int_correct));
    let o = &mut m.online_per_image;
    for v in [
        &mut o.client_s1,
        &mut o.client_s2,
        &mut o.s1_s2,
        &mut o.s2_s1,
        &mut o.s1_client,
        &mut o.s2_client,
    ] {
        *v /= nu;
    }
    m.offline_per_image.dealer_s1 /= nu;
    m.offline_per_image.dealer_s2 /= nu;
    m.seconds_per_image = PartySeconds {
        client: secs.client / nf,
        s1: secs.s1 / nf,
        s2: secs.s2 / nf,
        dealer: secs.dealer / nf,
    };
    lat.sort_by(f64::total_cmp);
    m.latency_median_seconds = lat.get(lat.len() / 2).copied().unwrap_or(0.0);
    Ok(m)
}
