//! SIGTERM and SIGINT, caught from the first line of `run`.
//!
//! Until a process registers a handler, SIGTERM's default action ends it at once. The operator
//! reports ready (`/readyz`) before its controllers start, and each controller registered its own
//! handler only when first polled: a SIGTERM in between (a rolling update right after a start, a
//! test that stops an operator as soon as it is ready) killed the process by the signal, without
//! the graceful stop. `install` replaces the default action with a flag before anything else, and
//! `requested` resolves for a signal that came before it was called, too.

use std::sync::OnceLock;

use tokio::sync::watch;

static REQUESTED: OnceLock<watch::Receiver<bool>> = OnceLock::new();

/// Catches SIGTERM and SIGINT from now on (inside a Tokio runtime). A second call does nothing.
pub fn install() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    if REQUESTED.get().is_some() {
        return Ok(());
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = watch::channel(false);
    if REQUESTED.set(rx).is_err() {
        return Ok(());
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(true);
    });
    Ok(())
}

/// Resolves once SIGTERM or SIGINT came after `install` (before this call or after it); never,
/// without `install` (unit tests, the CLI's other commands).
pub async fn requested() {
    let Some(rx) = REQUESTED.get() else {
        return std::future::pending().await;
    };
    let mut rx = rx.clone();
    if rx.wait_for(|&asked| asked).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_sigterm_that_comes_before_the_wait_is_caught_and_remembered() {
        install().unwrap();
        // Sent to this test process: without the handler, SIGTERM's default action would end it.
        let pid = std::process::id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(10), requested())
            .await
            .expect("the SIGTERM sent before requested() was awaited is remembered");
    }
}
