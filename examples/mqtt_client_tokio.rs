//! An MQTT 5 client on Tokio with zero-mqtt: subscribe to a topic, publish to it, print the
//! message as it comes back (`TOPIC PAYLOAD`), disconnect.
//!
//! Cargo features: `zero-mqtt` with `tokio` (the `client::tokio` module), and `tokio` with
//! `rt`, `macros` and `time` (a current-thread runtime is enough: no `rt-multi-thread`).
//!
//! Any MQTT broker is the peer, e.g. mosquitto or the `mqtt_broker_embedded` example:
//!
//! ```text
//! mosquitto -p 1883 &
//! cargo run -p zero-examples --example mqtt_client_tokio -- 127.0.0.1:1883 zero/hello
//! ```
//!
//! Arguments: `[BROKER_ADDR] [TOPIC]` (default `127.0.0.1:1883`, `zero/examples/hello`).
//! For mqtts: `Target::tls(addr, "broker.example", ClientTls::system_roots()?.build()?)`.

use std::net::SocketAddr;
use std::time::Duration;

use zero_mqtt::client::driver::Target;
use zero_mqtt::client::tokio::AsyncClient;
use zero_mqtt::client::ClientConfig;
use zero_mqtt::codec::{QoS, SubOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let broker: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:1883").parse()?;
    let topic = args.next().unwrap_or_else(|| "zero/examples/hello".to_string());

    // MQTT 5, clean start, keep-alive 60 s; it reconnects by itself (`reconnect_*`).
    let mut config = ClientConfig::default();
    config.client_id = format!("zero-example-{}", std::process::id());
    // The client's task runs on this runtime; `connect` returns once CONNACK accepted it.
    let (mut client, _session_present) = AsyncClient::connect(Target::tcp(broker), config).await?;

    // SUBACK's reason codes, one per filter: a granted QoS, or a refusal (0x80 and up).
    let granted = client.subscribe(&[(topic.as_str(), SubOptions::qos(QoS::AtLeastOnce))]).await?;
    if let Some(refused) = granted.iter().find(|r| r.is_error()) {
        return Err(format!("the broker refused the subscription: {refused}").into());
    }

    // At QoS 1 this returns once the broker's PUBACK arrived. No Local is off by default,
    // so the broker sends our own message back to us.
    client.publish(&topic, b"hello from zero-mqtt on Tokio", QoS::AtLeastOnce, false).await?;

    match tokio::time::timeout(Duration::from_secs(5), client.recv()).await {
        Ok(Some(m)) => println!("{} {}", m.topic, String::from_utf8_lossy(&m.payload)),
        Ok(None) => return Err("the client stopped".into()),
        Err(_) => return Err("no message within 5 s".into()),
    }

    // DISCONNECT (so no will is published), then the task ends.
    client.disconnect().await;
    Ok(())
}
