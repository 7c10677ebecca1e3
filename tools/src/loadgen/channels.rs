//! `channels`: N subscribers, each on its own channel, and one message per channel, published
//! over HTTP in requests of `--batch` items (or one ZeroMQ message per item). Measures how fast
//! a proxy routes many distinct channels: messages delivered per second (from the first publish
//! to the last delivery) and latency, with the same engine, settle time and loss accounting as
//! `fanout` (each subscriber expects sequence number 1 once).

use serde_json::Value;

use super::fanout::{deliver, run_tag, DeliveryOpts, Plan};
use super::publisher::Item;

#[derive(Debug, Clone, clap::Args)]
pub struct ChannelsArgs {
    #[command(flatten)]
    pub opts: DeliveryOpts,
    /// Number of subscribers (and channels, and messages).
    #[arg(short = 'n', long, default_value_t = 2000)]
    pub subscribers: usize,
    /// Items per HTTP publish request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Channel name prefix (default: unique per run).
    #[arg(long)]
    pub channel_prefix: Option<String>,
}

pub async fn run(args: ChannelsArgs) -> Result<Value, String> {
    let prefix = args
        .channel_prefix
        .clone()
        .unwrap_or_else(|| format!("ch-{}-", run_tag()));
    let sub_channels: Vec<String> = (0..args.subscribers)
        .map(|i| format!("{prefix}{i}"))
        .collect();
    let items: Vec<Item> = sub_channels
        .iter()
        .enumerate()
        .map(|(i, c)| Item {
            channel: c.clone(),
            id: format!("m{}", i + 1),
            seq: 1,
        })
        .collect();
    let batches = items
        .chunks(args.batch.max(1))
        .map(<[Item]>::to_vec)
        .collect();
    deliver(
        &args.opts,
        Plan {
            scenario: "channels",
            sub_channels,
            expected: 1,
            batches,
        },
    )
    .await
}
