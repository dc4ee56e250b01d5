//! The reconnection manager as a plain state type: [`Reconnect::on`] takes what happened
//! ([`Input`]) and answers what to do ([`Action`]s). It owns no socket, task or clock; the
//! session's tasks feed it and carry the actions out, so every rule below is tested as a
//! table (see the tests at the end).
//!
//! The rules: the first attempt after a cut goes at once (no delay: a server that is
//! reachable is back within a round trip); each attempt after a failed one waits the
//! policy's backoff with jitter (`initial_delay` before the second attempt, growing from
//! there); a login that fails counts as a failed attempt, and so does a connection cut
//! before it stayed up for `stable_after` (the first connection of `connect_chat`
//! excepted), so a server that drops every session right after login is retried ever more
//! slowly; after `max_attempts` failures (or one
//! with reconnection disabled) it reports `Disconnected` and waits for the user
//! (`reconnect_now` or network up), then starts again at attempt 1; a rejected login waits
//! for the user too (a token login first gets one renewed token); no network means
//! `Disconnected { "network unavailable" }` until it comes back. While `connect_chat` waits,
//! every failure ends the session instead and fails the call.

use std::time::{Duration, Instant};

use super::ConnectionState;
use crate::config::ReconnectPolicy;
use crate::error::Error;

/// How many reconnections in a row may fail to come up before stream management is hidden
/// from the stream once (see [`Action::HandOver`]).
const SM_WORKAROUND_AFTER: u32 = 3;

/// What happened, as told by the session's tasks and the app.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input {
    /// The stream needs a (new) connection; `connecting` = `connect_chat` still waits.
    ConnectionNeeded { at: Instant, connecting: bool },
    /// A wait ended: the backoff delay passed, or the user/network woke it.
    Woken,
    /// There is nothing to log in with (no session token).
    NoCredentials,
    /// A login succeeded; the connection is ready to be handed to the stream.
    LoginOk,
    /// The server rejected the credentials; `renewable` = a token that may be renewed.
    LoginRejected { error: Error, renewable: bool },
    /// The answer to [`Action::RenewToken`]: a fresh token exists (`true`) or not.
    TokenRenewed(bool),
    /// A login failed for another reason (network, TLS, timeout, protocol).
    ConnectFailed { error: Error, reason: String },
    /// The stream came up at `at`: bound afresh (`fresh`) or resumed.
    Up { at: Instant, fresh: bool },
    /// The app called `reconnect_now`; `connected` = the connection is up now.
    ReconnectNow { connected: bool },
    /// The device has a network again.
    NetworkUp,
    /// The device lost its network.
    NetworkDown,
    /// The session ends (disconnect, destroy, drop).
    Stop,
}

/// What to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Report this connection state.
    Report(ConnectionState),
    /// Fail the waiting `connect_chat` with this error.
    FailConnect(Error),
    /// Resolve the waiting `connect_chat` successfully.
    ConnectOk,
    /// Log in now.
    Connect,
    /// Sleep this long (waking early on `reconnect_now`), then feed [`Input::Woken`].
    Wait(Duration),
    /// Wait for `reconnect_now` or network up, then feed [`Input::Woken`].
    WaitForUser,
    /// Ask for a renewed session token, then feed [`Input::TokenRenewed`].
    RenewToken,
    /// Hand the logged-in connection to the stream; `hide_sm` = without stream management
    /// (work-around for xmpp-parsers 0.23, whose `sm::Failed` requires `h`: after such a
    /// `<failed/>` the stream keeps retrying `<resume/>`; hiding SM once makes it bind
    /// afresh, and the next reconnection enables SM again).
    HandOver { hide_sm: bool },
    /// Cut the current connection (the stream asks for a new one).
    Kill,
    /// Wake a waiting attempt.
    Wake,
    /// End the session: release the stream's request and stop.
    Stop,
}

/// Where the attempt in progress stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// No attempt in progress (connected, or not started).
    Idle,
    /// Waiting out a backoff delay.
    Delay,
    /// Waiting for the user after a rejected login, missing credentials or no network.
    User,
    /// Waiting for the user after the attempts ran out: they start again at 1.
    GaveUp,
    /// Logging in (or renewing the token for it).
    LoggingIn,
    /// Ended.
    Stopped,
}

/// The reconnection state of one chat session.
pub(crate) struct Reconnect {
    policy: ReconnectPolicy,
    /// A random number in 0..=1 for the jitter of each delay.
    random: Box<dyn FnMut() -> f64 + Send>,
    phase: Phase,
    /// `connect_chat` waits for this attempt.
    connecting: bool,
    network: bool,
    /// Failed attempts since the last stable connection.
    failures: u32,
    /// Skip the backoff delay of the next attempt.
    immediate: bool,
    /// Connections asked for since the stream last came up.
    unstable: u32,
    /// A connection was handed over and not judged yet; `Some(first)` = the first of the
    /// session.
    handed: Option<bool>,
    /// When the handed connection came up.
    up_since: Option<Instant>,
    /// The current connection was handed over without stream management.
    sm_hidden: bool,
    /// A rejected token login already got its one renewed token.
    renewed: bool,
    /// The rejection waiting for the answer to [`Action::RenewToken`].
    rejection: Option<Error>,
}

impl Reconnect {
    /// A new state for a session started with the network `network`.
    pub(crate) fn new(
        policy: ReconnectPolicy,
        network: bool,
        random: Box<dyn FnMut() -> f64 + Send>,
    ) -> Self {
        Self {
            policy,
            random,
            phase: Phase::Idle,
            connecting: false,
            network,
            failures: 0,
            immediate: false,
            unstable: 0,
            handed: None,
            up_since: None,
            sm_hidden: false,
            renewed: false,
            rejection: None,
        }
    }

    /// Takes one input and returns what to do.
    pub(crate) fn on(&mut self, input: Input) -> Vec<Action> {
        if self.phase == Phase::Stopped {
            return match input {
                Input::ConnectionNeeded { .. } | Input::Woken | Input::LoginOk => {
                    vec![Action::Stop]
                }
                _ => Vec::new(),
            };
        }
        match input {
            Input::ConnectionNeeded { at, connecting } => {
                self.connecting = connecting;
                self.renewed = false;
                self.unstable += 1;
                self.judge_lost_connection(at);
                self.next_attempt()
            }
            Input::Woken => match self.phase {
                Phase::Delay => {
                    // Woken early (`reconnect_now`, network up) or not, this attempt is
                    // the one that skips the wait: a failure after it waits again.
                    self.immediate = false;
                    self.connect()
                }
                Phase::User => {
                    self.immediate = true;
                    self.next_attempt()
                }
                Phase::GaveUp => {
                    self.failures = 0;
                    self.immediate = true;
                    self.next_attempt()
                }
                Phase::Idle | Phase::LoggingIn | Phase::Stopped => Vec::new(),
            },
            Input::NoCredentials => {
                // The session ended or expired unrenewably: like a rejected login, wait for
                // `reconnect_now` after the app logs in again.
                self.rejected(Error::NotLoggedIn)
            }
            Input::LoginOk => {
                self.phase = Phase::Idle;
                let hide_sm = self.unstable > SM_WORKAROUND_AFTER;
                self.sm_hidden = hide_sm;
                self.handed = Some(self.connecting);
                vec![Action::HandOver { hide_sm }]
            }
            Input::LoginRejected { error, renewable } => {
                if renewable && !self.renewed {
                    self.renewed = true;
                    self.rejection = Some(error);
                    return vec![Action::RenewToken];
                }
                self.rejected(error)
            }
            Input::TokenRenewed(true) => {
                self.rejection = None;
                self.immediate = true;
                self.next_attempt()
            }
            Input::TokenRenewed(false) => {
                let error = self.rejection.take().unwrap_or(Error::NotLoggedIn);
                self.rejected(error)
            }
            Input::ConnectFailed { error, reason } => {
                self.failures += 1;
                if self.connecting {
                    return self.stop_with(error, Some(ConnectionState::Disconnected { reason }));
                }
                let give_up = !self.policy.enabled
                    || self.policy.max_attempts.is_some_and(|m| self.failures >= m);
                if !give_up {
                    return self.next_attempt();
                }
                let reason = if self.policy.enabled {
                    format!("gave up after {} attempts: {reason}", self.failures)
                } else {
                    format!("connection lost, reconnection disabled: {reason}")
                };
                self.give_up(reason)
            }
            Input::Up { at, fresh } => {
                if self.phase != Phase::Idle {
                    // The stream asked for a new connection before the engine handled this
                    // one coming up: it is gone already, report nothing.
                    let connect_ok = fresh && std::mem::take(&mut self.connecting);
                    return if connect_ok {
                        vec![Action::ConnectOk]
                    } else {
                        Vec::new()
                    };
                }
                self.up_since = Some(at);
                self.unstable = 0;
                let mut out = vec![Action::Report(ConnectionState::Connected)];
                if fresh {
                    if std::mem::take(&mut self.connecting) {
                        out.push(Action::ConnectOk);
                    }
                    if std::mem::take(&mut self.sm_hidden) {
                        // This session has no stream management (no acks, no resumption):
                        // reconnect at once so the next one enables it afresh.
                        self.immediate = true;
                        out.push(Action::Kill);
                    }
                }
                out
            }
            Input::ReconnectNow { connected } => {
                self.immediate = true;
                self.failures = 0;
                vec![if connected {
                    Action::Kill
                } else {
                    Action::Wake
                }]
            }
            Input::NetworkUp => {
                if !self.network {
                    // A network again: a fresh start, like `reconnect_now` (the attempts
                    // that failed without one say nothing about the server).
                    self.failures = 0;
                }
                self.network = true;
                self.immediate = true;
                vec![Action::Wake]
            }
            Input::NetworkDown => {
                self.network = false;
                vec![Action::Kill]
            }
            Input::Stop => {
                self.phase = Phase::Stopped;
                vec![Action::Stop]
            }
        }
    }

    /// The stream lost the connection it had (if any): the first cut of a session, or of a
    /// connection that stayed up for `stable_after`, restarts the backoff at attempt 1; a
    /// reconnection cut sooner, or never up, counts as a failed attempt, so the next delay
    /// grows (a server that drops every session right after login is not retried about once
    /// a second). A cut the app asked for (`reconnect_now`, network lost) is neither.
    fn judge_lost_connection(&mut self, at: Instant) {
        let up = self.up_since.take();
        let Some(first) = self.handed.take() else {
            return;
        };
        let stable =
            up.is_some_and(|t| at.saturating_duration_since(t) >= self.policy.stable_after);
        if (up.is_some() && first) || stable {
            self.failures = 0;
        } else if !self.immediate && self.network {
            self.failures += 1;
        }
    }

    /// Decides the next attempt: wait for the network, give up, or report and connect (at
    /// once for the first attempt or when `immediate`, else after the backoff delay of the
    /// failures so far).
    fn next_attempt(&mut self) -> Vec<Action> {
        if !self.network {
            let reason = "network unavailable".to_owned();
            if self.connecting {
                return self.stop_with(
                    Error::Network(reason.clone()),
                    Some(ConnectionState::Disconnected { reason }),
                );
            }
            self.phase = Phase::User;
            return vec![
                Action::Report(ConnectionState::Disconnected { reason }),
                Action::WaitForUser,
            ];
        }
        let attempt = self.failures + 1;
        if self.connecting {
            self.phase = Phase::LoggingIn;
            return vec![Action::Report(ConnectionState::Connecting), Action::Connect];
        }
        if self.policy.max_attempts.is_some_and(|m| attempt > m) && !self.immediate {
            // Connections that kept dropping before they were stable used up the attempts
            // (failed logins give up in `ConnectFailed`, with their own reason).
            return self.give_up(format!(
                "gave up after {} attempts: connections kept dropping",
                attempt - 1
            ));
        }
        // `failures` = 0: the first attempt after a cut, without waiting; after `n` failed
        // attempts, the `n`th delay of the backoff.
        let delay = if std::mem::take(&mut self.immediate) || self.failures == 0 {
            Duration::ZERO
        } else {
            super::util::backoff_delay(&self.policy, self.failures, (self.random)())
        };
        let report = Action::Report(ConnectionState::Reconnecting {
            attempt,
            next_delay: delay,
        });
        if delay.is_zero() {
            self.phase = Phase::LoggingIn;
            vec![report, Action::Connect]
        } else {
            self.phase = Phase::Delay;
            vec![report, Action::Wait(delay)]
        }
    }

    fn connect(&mut self) -> Vec<Action> {
        self.phase = Phase::LoggingIn;
        vec![Action::Connect]
    }

    /// The credentials do not work: fatal, no loop; only `reconnect_now` (maybe with a
    /// renewed token) retries.
    fn rejected(&mut self, error: Error) -> Vec<Action> {
        if self.connecting {
            return self.stop_with(error, Some(ConnectionState::AuthFailed));
        }
        self.phase = Phase::User;
        vec![
            Action::Report(ConnectionState::AuthFailed),
            Action::WaitForUser,
        ]
    }

    /// Reports `Disconnected { reason }` after the attempts ran out, then waits for the user.
    fn give_up(&mut self, reason: String) -> Vec<Action> {
        self.phase = Phase::GaveUp;
        vec![
            Action::Report(ConnectionState::Disconnected { reason }),
            Action::WaitForUser,
        ]
    }

    /// `connect_chat` fails: the session ends.
    fn stop_with(&mut self, error: Error, state: Option<ConnectionState>) -> Vec<Action> {
        self.phase = Phase::Stopped;
        self.connecting = false;
        let mut out = Vec::new();
        if let Some(s) = state {
            out.push(Action::Report(s));
        }
        out.push(Action::FailConnect(error));
        out.push(Action::Stop);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Action::*;
    use ConnectionState::{AuthFailed, Connected, Connecting, Disconnected, Reconnecting};

    fn policy() -> ReconnectPolicy {
        ReconnectPolicy {
            enabled: true,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: None,
            stable_after: Duration::from_secs(30),
        }
    }

    /// A state with the jitter's random number fixed at the middle (no spread).
    fn state(p: ReconnectPolicy) -> Reconnect {
        Reconnect::new(p, true, Box::new(|| 0.5))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn reconnecting(attempt: u32, next_delay: Duration) -> Action {
        Report(Reconnecting {
            attempt,
            next_delay,
        })
    }

    fn needed(at: Instant) -> Input {
        Input::ConnectionNeeded {
            at,
            connecting: false,
        }
    }

    fn failed(reason: &str) -> Input {
        Input::ConnectFailed {
            error: Error::Network(reason.into()),
            reason: reason.into(),
        }
    }

    fn rejected(renewable: bool) -> Input {
        Input::LoginRejected {
            error: Error::InvalidCredentials("chat login rejected".into()),
            renewable,
        }
    }

    /// Runs `connect_chat` to `Connected` and returns when it came up.
    fn connected(r: &mut Reconnect) -> Instant {
        let t0 = Instant::now();
        let first = Input::ConnectionNeeded {
            at: t0,
            connecting: true,
        };
        assert_eq!(r.on(first), vec![Report(Connecting), Connect]);
        assert_eq!(r.on(Input::LoginOk), vec![HandOver { hide_sm: false }]);
        let up = Input::Up {
            at: t0,
            fresh: true,
        };
        assert_eq!(r.on(up), vec![Report(Connected), ConnectOk]);
        t0
    }

    /// Each row: an input and the actions it must give, in order.
    fn table(r: &mut Reconnect, rows: Vec<(Input, Vec<Action>)>) {
        for (i, (input, want)) in rows.into_iter().enumerate() {
            let shown = format!("{input:?}");
            assert_eq!(r.on(input), want, "row {i}: {shown}");
        }
    }

    #[test]
    fn connect_chat_fails_once_and_ends_the_session() {
        let mut r = state(policy());
        let first = Input::ConnectionNeeded {
            at: Instant::now(),
            connecting: true,
        };
        table(
            &mut r,
            vec![
                (first, vec![Report(Connecting), Connect]),
                (
                    failed("refused"),
                    vec![
                        Report(Disconnected {
                            reason: "refused".into(),
                        }),
                        FailConnect(Error::Network("refused".into())),
                        Stop,
                    ],
                ),
                (Input::Woken, vec![Stop]),
                (needed(Instant::now()), vec![Stop]),
            ],
        );
    }

    #[test]
    fn backoff_grows_per_failed_attempt_and_restarts_after_a_stable_connection() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        // The first connection of the session was up: its cut starts again at attempt 1.
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (failed("x"), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
                (Input::Woken, vec![Connect]),
                (failed("x"), vec![reconnecting(3, ms(200)), Wait(ms(200))]),
                (Input::Woken, vec![Connect]),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                (
                    Input::Up {
                        at: t0,
                        fresh: true,
                    },
                    vec![Report(Connected)],
                ),
                // Cut after less than `stable_after`: one more failed attempt.
                (
                    needed(t0 + Duration::from_secs(29)),
                    vec![reconnecting(4, ms(400)), Wait(ms(400))],
                ),
                (Input::Woken, vec![Connect]),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                (
                    Input::Up {
                        at: t0,
                        fresh: false,
                    },
                    vec![Report(Connected)],
                ),
                // Up for `stable_after`: the backoff restarts, the first attempt at once.
                (
                    needed(t0 + Duration::from_secs(30)),
                    vec![reconnecting(1, Duration::ZERO), Connect],
                ),
                (failed("x"), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
            ],
        );
    }

    #[test]
    fn jitter_spreads_the_delay() {
        let mut r = Reconnect::new(policy(), true, Box::new(|| 1.0));
        let t0 = connected(&mut r);
        assert_eq!(
            r.on(needed(t0)),
            vec![reconnecting(1, Duration::ZERO), Connect]
        );
        assert_eq!(
            r.on(failed("x")),
            vec![reconnecting(2, ms(150)), Wait(ms(150))]
        );
    }

    #[test]
    fn a_connection_that_never_comes_up_counts_as_a_failure() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                (needed(t0), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
            ],
        );
    }

    #[test]
    fn max_attempts_gives_up_then_reconnect_now_starts_again_at_once() {
        let mut r = state(ReconnectPolicy {
            max_attempts: Some(2),
            ..policy()
        });
        let t0 = connected(&mut r);
        let gave_up = Report(Disconnected {
            reason: "gave up after 2 attempts: refused".into(),
        });
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (
                    failed("refused"),
                    vec![reconnecting(2, ms(100)), Wait(ms(100))],
                ),
                (Input::Woken, vec![Connect]),
                (failed("refused"), vec![gave_up, WaitForUser]),
                (Input::ReconnectNow { connected: false }, vec![Wake]),
                (Input::Woken, vec![reconnecting(1, Duration::ZERO), Connect]),
                (
                    failed("refused"),
                    vec![reconnecting(2, ms(100)), Wait(ms(100))],
                ),
            ],
        );
    }

    #[test]
    fn connections_that_keep_dropping_use_up_the_attempts() {
        let mut r = state(ReconnectPolicy {
            max_attempts: Some(1),
            ..policy()
        });
        let t0 = connected(&mut r);
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                (
                    Input::Up {
                        at: t0,
                        fresh: true,
                    },
                    vec![Report(Connected)],
                ),
                (
                    needed(t0 + ms(10)),
                    vec![
                        Report(Disconnected {
                            reason: "gave up after 1 attempts: connections kept dropping".into(),
                        }),
                        WaitForUser,
                    ],
                ),
                (Input::NetworkUp, vec![Wake]),
                (Input::Woken, vec![reconnecting(1, Duration::ZERO), Connect]),
            ],
        );
    }

    #[test]
    fn reconnection_disabled_gives_up_after_one_failed_login() {
        let mut r = state(ReconnectPolicy {
            enabled: false,
            ..policy()
        });
        let t0 = connected(&mut r);
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (
                    failed("refused"),
                    vec![
                        Report(Disconnected {
                            reason: "connection lost, reconnection disabled: refused".into(),
                        }),
                        WaitForUser,
                    ],
                ),
            ],
        );
    }

    #[test]
    fn no_network_waits_for_it_without_counting_failures() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        let offline = Report(Disconnected {
            reason: "network unavailable".into(),
        });
        table(
            &mut r,
            vec![
                (Input::NetworkDown, vec![Kill]),
                (needed(t0), vec![offline.clone(), WaitForUser]),
                (Input::NetworkUp, vec![Wake]),
                (Input::Woken, vec![reconnecting(1, Duration::ZERO), Connect]),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                // Lost while the network is down: not a failed attempt.
                (Input::NetworkDown, vec![Kill]),
                (needed(t0), vec![offline, WaitForUser]),
                (Input::NetworkUp, vec![Wake]),
                (Input::Woken, vec![reconnecting(1, Duration::ZERO), Connect]),
            ],
        );
    }

    #[test]
    fn connect_chat_without_network_fails() {
        let mut r = Reconnect::new(policy(), false, Box::new(|| 0.5));
        let first = Input::ConnectionNeeded {
            at: Instant::now(),
            connecting: true,
        };
        assert_eq!(
            r.on(first),
            vec![
                Report(Disconnected {
                    reason: "network unavailable".into()
                }),
                FailConnect(Error::Network("network unavailable".into())),
                Stop,
            ]
        );
    }

    #[test]
    fn a_rejected_token_is_renewed_once_then_auth_failed_waits_for_reconnect_now() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        let rejection = Error::InvalidCredentials("chat login rejected".into());
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (rejected(true), vec![RenewToken]),
                (
                    Input::TokenRenewed(true),
                    vec![reconnecting(1, Duration::ZERO), Connect],
                ),
                // Only one renewal per connection asked for.
                (rejected(true), vec![Report(AuthFailed), WaitForUser]),
                (Input::ReconnectNow { connected: false }, vec![Wake]),
                (Input::Woken, vec![reconnecting(1, Duration::ZERO), Connect]),
                (rejected(true), vec![Report(AuthFailed), WaitForUser]),
                (Input::Woken, vec![reconnecting(1, Duration::ZERO), Connect]),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                // A new connection asked for (this one never came up: a failed attempt) may
                // renew again; no new token: AuthFailed.
                (needed(t0), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
                (Input::Woken, vec![Connect]),
                (rejected(true), vec![RenewToken]),
                (
                    Input::TokenRenewed(false),
                    vec![Report(AuthFailed), WaitForUser],
                ),
            ],
        );
        // While connect_chat waits, the rejection fails it with the login's error.
        let mut r = state(policy());
        let first = Input::ConnectionNeeded {
            at: t0,
            connecting: true,
        };
        table(
            &mut r,
            vec![
                (first, vec![Report(Connecting), Connect]),
                (rejected(true), vec![RenewToken]),
                (
                    Input::TokenRenewed(false),
                    vec![Report(AuthFailed), FailConnect(rejection), Stop],
                ),
            ],
        );
    }

    #[test]
    fn a_rejected_password_is_not_retried() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (rejected(false), vec![Report(AuthFailed), WaitForUser]),
            ],
        );
    }

    #[test]
    fn no_credentials_is_auth_failed() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (Input::NoCredentials, vec![Report(AuthFailed), WaitForUser]),
            ],
        );
        let mut r = state(policy());
        let first = Input::ConnectionNeeded {
            at: t0,
            connecting: true,
        };
        table(
            &mut r,
            vec![
                (first, vec![Report(Connecting), Connect]),
                (
                    Input::NoCredentials,
                    vec![Report(AuthFailed), FailConnect(Error::NotLoggedIn), Stop],
                ),
            ],
        );
    }

    #[test]
    fn reconnect_now_cuts_a_live_connection_and_skips_the_delay() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        table(
            &mut r,
            vec![
                (Input::ReconnectNow { connected: true }, vec![Kill]),
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (failed("x"), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
                // During the delay: wakes it, and the attempts start again at 1.
                (Input::ReconnectNow { connected: false }, vec![Wake]),
                (Input::Woken, vec![Connect]),
                // That attempt failing: the backoff again, from the first delay.
                (failed("x"), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
            ],
        );
    }

    #[test]
    fn stream_resumption_failing_again_and_again_hides_sm_once() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        let mut rows = Vec::new();
        rows.push((needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]));
        rows.push((Input::LoginOk, vec![HandOver { hide_sm: false }]));
        for attempt in 2..=3u32 {
            let d = ms(100 << (attempt - 2));
            rows.push((needed(t0), vec![reconnecting(attempt, d), Wait(d)]));
            rows.push((Input::Woken, vec![Connect]));
            rows.push((Input::LoginOk, vec![HandOver { hide_sm: false }]));
        }
        rows.push((needed(t0), vec![reconnecting(4, ms(400)), Wait(ms(400))]));
        rows.push((Input::Woken, vec![Connect]));
        rows.push((Input::LoginOk, vec![HandOver { hide_sm: true }]));
        // Bound without SM: reconnect at once to enable it again.
        rows.push((
            Input::Up {
                at: t0,
                fresh: true,
            },
            vec![Report(Connected), Kill],
        ));
        // A cut the session asked for is not a failed attempt.
        rows.push((needed(t0), vec![reconnecting(4, Duration::ZERO), Connect]));
        rows.push((Input::LoginOk, vec![HandOver { hide_sm: false }]));
        table(&mut r, rows);
    }

    #[test]
    fn a_connection_lost_before_its_bind_was_handled_is_not_reported_up() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                (needed(t0), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
                (
                    Input::Up {
                        at: t0,
                        fresh: true,
                    },
                    vec![],
                ),
                (Input::Woken, vec![Connect]),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                // The stale `Up` did not count: this connection never came up either.
                (needed(t0), vec![reconnecting(3, ms(200)), Wait(ms(200))]),
            ],
        );
    }

    #[test]
    fn the_first_attempt_after_a_cut_goes_at_once_whatever_the_initial_delay() {
        let mut r = state(ReconnectPolicy {
            initial_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(120),
            ..policy()
        });
        let t0 = connected(&mut r);
        let s30 = Duration::from_secs(30);
        table(
            &mut r,
            vec![
                // The cut of connect_chat's connection: at once; only a failure waits.
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (failed("x"), vec![reconnecting(2, s30), Wait(s30)]),
                (Input::Woken, vec![Connect]),
                (failed("x"), vec![reconnecting(3, s30 * 2), Wait(s30 * 2)]),
                (Input::Woken, vec![Connect]),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                (
                    Input::Up {
                        at: t0,
                        fresh: true,
                    },
                    vec![Report(Connected)],
                ),
                // Cut after it was stable: at once again.
                (
                    needed(t0 + s30),
                    vec![reconnecting(1, Duration::ZERO), Connect],
                ),
                (Input::LoginOk, vec![HandOver { hide_sm: false }]),
                (
                    Input::Up {
                        at: t0 + s30,
                        fresh: false,
                    },
                    vec![Report(Connected)],
                ),
                // Cut sooner than `stable_after`: a failed attempt, so the next one waits.
                (
                    needed(t0 + s30 + ms(10)),
                    vec![reconnecting(2, s30), Wait(s30)],
                ),
            ],
        );
    }

    #[test]
    fn network_up_goes_at_once_and_restarts_the_backoff() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        let offline = Report(Disconnected {
            reason: "network unavailable".into(),
        });
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (failed("x"), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
                // Network up while it was up all along: the waiting attempt goes at once,
                // the backoff goes on after it.
                (Input::NetworkUp, vec![Wake]),
                (Input::Woken, vec![Connect]),
                (failed("x"), vec![reconnecting(3, ms(200)), Wait(ms(200))]),
                // The network goes during the wait: the attempt fails, then waits for it.
                (Input::NetworkDown, vec![Kill]),
                (Input::Woken, vec![Connect]),
                (failed("x"), vec![offline, WaitForUser]),
                // Back: at once, and the backoff starts again from the first delay.
                (Input::NetworkUp, vec![Wake]),
                (Input::Woken, vec![reconnecting(1, Duration::ZERO), Connect]),
                (failed("x"), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
            ],
        );
    }

    #[test]
    fn stop_ends_every_wait() {
        let mut r = state(policy());
        let t0 = connected(&mut r);
        table(
            &mut r,
            vec![
                (needed(t0), vec![reconnecting(1, Duration::ZERO), Connect]),
                (failed("x"), vec![reconnecting(2, ms(100)), Wait(ms(100))]),
                (Input::Stop, vec![Stop]),
                (Input::Woken, vec![Stop]),
                (Input::ReconnectNow { connected: false }, vec![]),
            ],
        );
    }
}
