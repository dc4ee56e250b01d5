//! A CPU-per-message proxy for choosing build settings (reported, not a timed test): two
//! clients in this process exchange `--msgs` private messages through a real XMPP server
//! (e.g. the private ejabberd of `scripts/ejabberd.sh start DIR 5-7:pw5 6-7:pw6`), one
//! sending through the send queue, the other receiving; it ends when every message has
//! arrived and been acknowledged. Run it under `valgrind --tool=callgrind` with two message
//! counts: the difference of the instruction totals over the difference of the counts is the
//! client instructions per message (send + ack + receive), without the login and start-up.
//!
//! ```text
//! cargo build --release -p cubechat-core --example chat_loop
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/chat_loop --port PORT --ca CA.pem --msgs 1000
//! ```
//!
//! Every wait is bounded (`--timeout-s`, default 300 s).

use std::error::Error;
use std::time::{Duration, Instant};

use cubechat_core::{ChatAuth, ChatEvent, Client, Config, OutgoingMessage};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn client(port: u16, ca: &str) -> Result<std::sync::Arc<Client>, Box<dyn Error>> {
    let mut c = Config::new(7, "key", "http://127.0.0.1:9");
    c.chat.host = "127.0.0.1".into();
    c.chat.domain = "localhost".into();
    c.chat.port = port;
    c.tls.extra_ca_pem = Some(std::fs::read_to_string(ca)?);
    c.timeouts.connect = Duration::from_secs(60);
    Ok(Client::new(c)?)
}

fn pw(user: u64, password: &str) -> ChatAuth {
    ChatAuth::Password {
        user_id: Some(user),
        password: password.into(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = arg(&args, "--port").ok_or("--port")?.parse()?;
    let ca = arg(&args, "--ca").ok_or("--ca")?;
    let n: usize = arg(&args, "--msgs")
        .unwrap_or_else(|| "1000".into())
        .parse()?;
    let limit = Duration::from_secs(
        arg(&args, "--timeout-s")
            .unwrap_or_else(|| "300".into())
            .parse()?,
    );
    let a = client(port, &ca)?;
    let b = client(port, &ca)?;
    let mut a_ev = a.chat().subscribe_chat();
    let mut b_ev = b.chat().subscribe_chat();
    a.chat().connect_chat(pw(5, "pw5")).await?;
    b.chat().connect_chat(pw(6, "pw6")).await?;
    let t = Instant::now();
    for i in 0..n {
        a.send_queue()
            .send_message(OutgoingMessage::new("dlg1", Some(6), format!("m{i}")))?;
    }
    let (mut got, mut sent) = (0, 0);
    tokio::time::timeout(limit, async {
        while got < n || sent < n {
            tokio::select! {
                Some(e) = b_ev.recv(), if got < n => {
                    if matches!(e, ChatEvent::Message(_)) { got += 1; }
                }
                Some(e) = a_ev.recv(), if sent < n => {
                    if matches!(e, ChatEvent::Sent { .. }) { sent += 1; }
                }
            }
        }
    })
    .await
    .map_err(|_| format!("timed out: {got} received, {sent} acknowledged of {n}"))?;
    let el = t.elapsed();
    println!(
        "{n} messages received and acknowledged in {:.3} s ({:.0} msgs/s)",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64()
    );
    a.chat().destroy_chat().await;
    b.chat().destroy_chat().await;
    Ok(())
}
