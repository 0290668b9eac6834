//! [`AwsError`] and the one place that classifies the SDK's errors into it ([`classify`]).

use std::error::Error as StdError;
use std::time::Duration;

use aws_sdk_apigateway::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::Headers;
use aws_smithy_types::error::display::DisplayErrorContext;

/// An AWS call that failed, classified once for the controller's retry policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// 404 NotFoundException; message is AWS's ("Invalid Resource identifier specified", ...),
    /// or ours for a name or path lookup that found nothing.
    #[error("{message}")]
    NotFound { message: String },
    /// 400 BadRequestException (or another 4xx a retry cannot fix, e.g. ValidationException):
    /// terminal for this spec generation.
    #[error("{code}: {message}")]
    Invalid { code: String, message: String },
    /// 401/403, or no usable credentials: retried slowly, it may be fixed outside.
    #[error("{code}: {message}")]
    Unauthorized { code: String, message: String },
    /// 429 (TooManyRequests, LimitExceeded), 409 Conflict, 5xx, timeouts, connection errors.
    #[error("{message}")]
    Retryable {
        kind: RetryKind,
        message: String,
        retry_after: Option<Duration>,
    },
    /// A name lookup matched more than one REST API.
    #[error("{message}")]
    Ambiguous { message: String },
}

/// Why a [`AwsError::Retryable`] error may go away by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryKind {
    /// 429: TooManyRequestsException, LimitExceededException.
    Throttled,
    /// 409: ConflictException (a concurrent modification).
    Conflict,
    /// 5xx, or a response the SDK could not parse.
    Server,
    /// No answer within the connect/read/operation timeout.
    Timeout,
    /// Connection refused, reset or dropped; DNS failures.
    Connection,
    /// A write not sent: this replica could not renew its leader-election lease within the
    /// renew deadline (see `leader`), so another replica may already be writing.
    NotLeader,
}

impl AwsError {
    /// A short label for metrics and condition reasons: `not_found`, `invalid`, `unauthorized`,
    /// `throttled`, `conflict`, `server`, `timeout`, `connection` or `ambiguous`.
    pub fn category(&self) -> &'static str {
        match self {
            AwsError::NotFound { .. } => "not_found",
            AwsError::Invalid { .. } => "invalid",
            AwsError::Unauthorized { .. } => "unauthorized",
            AwsError::Ambiguous { .. } => "ambiguous",
            AwsError::Retryable { kind, .. } => match kind {
                RetryKind::Throttled => "throttled",
                RetryKind::Conflict => "conflict",
                RetryKind::Server => "server",
                RetryKind::Timeout => "timeout",
                RetryKind::Connection => "connection",
                RetryKind::NotLeader => "not_leader",
            },
        }
    }

    /// The delay AWS asked for (`Retry-After`), on 429 and some 5xx answers.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AwsError::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the call never reached AWS for want of credentials (a write the fence stopped
    /// is not a call at all, and is not reported).
    pub fn never_sent(&self) -> bool {
        matches!(self, AwsError::Unauthorized { code, .. } if code == "CredentialsError")
    }

    /// Whether the error is transient (throttling, conflict, 5xx, timeout, connection).
    pub fn is_retryable(&self) -> bool {
        matches!(self, AwsError::Retryable { .. })
    }

    /// Whether AWS said the target does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, AwsError::NotFound { .. })
    }

    /// AWS's message (or ours), without the code.
    pub fn message(&self) -> &str {
        match self {
            AwsError::NotFound { message }
            | AwsError::Invalid { message, .. }
            | AwsError::Unauthorized { message, .. }
            | AwsError::Retryable { message, .. }
            | AwsError::Ambiguous { message } => message,
        }
    }

    /// The same error, its message prefixed with the AWS operation that failed, so that a
    /// condition says which call a timeout or an unreadable answer came from. Only retryable
    /// errors: AWS's own messages (400, 404) are kept as AWS wrote them.
    pub fn in_call(self, operation: &str) -> Self {
        match self {
            AwsError::Retryable {
                kind,
                message,
                retry_after,
            } => AwsError::Retryable {
                kind,
                message: format!("{operation}: {message}"),
                retry_after,
            },
            other => other,
        }
    }

    pub(crate) fn retryable(kind: RetryKind, message: impl Into<String>) -> Self {
        AwsError::Retryable {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Classifies an error answered by AWS from its HTTP status and error code (the
/// `x-amzn-ErrorType` header or the body's `__type`/`code`).
pub(crate) fn from_response(
    status: u16,
    code: Option<&str>,
    message: String,
    retry_after: Option<Duration>,
) -> AwsError {
    let code_name = code.unwrap_or("").trim();
    // Some services send "Code:http://..." in x-amzn-ErrorType; the SDK strips it, be safe.
    let code_name = code_name.split(':').next().unwrap_or("");
    let code_or_status = || {
        if code_name.is_empty() {
            format!("HTTP{status}")
        } else {
            code_name.to_owned()
        }
    };
    let retryable = |kind| AwsError::Retryable {
        kind,
        message: message.clone(),
        retry_after,
    };
    match code_name {
        "NotFoundException" => return AwsError::NotFound { message },
        "TooManyRequestsException"
        | "LimitExceededException"
        | "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "RequestLimitExceeded" => return retryable(RetryKind::Throttled),
        "ConflictException" => return retryable(RetryKind::Conflict),
        "UnauthorizedException"
        | "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId" => {
            return AwsError::Unauthorized {
                code: code_or_status(),
                message,
            }
        }
        "BadRequestException" | "ValidationException" | "SerializationException" => {
            return AwsError::Invalid {
                code: code_or_status(),
                message,
            }
        }
        "ServiceUnavailableException" | "InternalFailure" | "InternalServerError" => {
            return retryable(RetryKind::Server)
        }
        _ => {}
    }
    match status {
        404 => AwsError::NotFound { message },
        429 => retryable(RetryKind::Throttled),
        409 => retryable(RetryKind::Conflict),
        401 | 403 => AwsError::Unauthorized {
            code: code_or_status(),
            message,
        },
        // A request timeout answered by a proxy or load balancer.
        408 => retryable(RetryKind::Timeout),
        // Only AWS's 400 is a verdict on the request; any other status without a code we
        // know (a 2xx or 3xx that is no answer, a 4xx from a proxy) is not.
        400 => AwsError::Invalid {
            code: code_or_status(),
            message,
        },
        _ => retryable(RetryKind::Server),
    }
}

/// `Retry-After` in seconds (an integer or a decimal); HTTP dates are not used by AWS.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

fn retry_after(headers: &Headers) -> Option<Duration> {
    headers.get("retry-after").and_then(parse_retry_after)
}

/// Whether a credentials provider failed somewhere in the error's source chain.
fn is_credentials_error(err: &(dyn StdError + 'static)) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// The SDK's error, classified. The only place that looks inside [`SdkError`].
pub(crate) fn classify<E>(err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let raw = service.raw();
            let status = raw.status().as_u16();
            let code = service.err().code();
            let message = match service.err().message() {
                Some(m) if !m.is_empty() => m.to_owned(),
                _ => format!("{} (HTTP {status})", code.unwrap_or("unknown error")),
            };
            from_response(status, code, message, retry_after(raw.headers()))
        }
        SdkError::ResponseError(response) => {
            let raw = response.raw();
            let status = raw.status().as_u16();
            let message = format!(
                "unreadable response (HTTP {status}): {}",
                DisplayErrorContext(&err)
            );
            if (400..500).contains(&status) {
                from_response(status, None, message, retry_after(raw.headers()))
            } else {
                AwsError::Retryable {
                    kind: RetryKind::Server,
                    message,
                    retry_after: retry_after(raw.headers()),
                }
            }
        }
        SdkError::TimeoutError(_) => AwsError::retryable(
            RetryKind::Timeout,
            format!("request timed out: {}", DisplayErrorContext(&err)),
        ),
        SdkError::DispatchFailure(dispatch) => {
            if is_credentials_error(&err) {
                AwsError::Unauthorized {
                    code: "CredentialsError".into(),
                    message: format!("no usable AWS credentials: {}", DisplayErrorContext(&err)),
                }
            } else if dispatch.is_timeout() {
                AwsError::retryable(
                    RetryKind::Timeout,
                    format!("connection timed out: {}", DisplayErrorContext(&err)),
                )
            } else {
                AwsError::retryable(
                    RetryKind::Connection,
                    format!("request not answered: {}", DisplayErrorContext(&err)),
                )
            }
        }
        SdkError::ConstructionFailure(_) => {
            if is_credentials_error(&err) {
                AwsError::Unauthorized {
                    code: "CredentialsError".into(),
                    message: format!("no usable AWS credentials: {}", DisplayErrorContext(&err)),
                }
            } else {
                AwsError::Invalid {
                    code: "RequestConstruction".into(),
                    message: format!(
                        "the request could not be built: {}",
                        DisplayErrorContext(&err)
                    ),
                }
            }
        }
        _ => AwsError::retryable(RetryKind::Server, DisplayErrorContext(&err).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> String {
        "msg".to_owned()
    }

    #[test]
    fn codes_win_over_statuses() {
        assert_eq!(
            from_response(404, Some("NotFoundException"), m(), None),
            AwsError::NotFound { message: m() }
        );
        assert_eq!(
            from_response(400, Some("BadRequestException"), m(), None).category(),
            "invalid"
        );
        assert_eq!(
            from_response(400, Some("ValidationException"), m(), None),
            AwsError::Invalid {
                code: "ValidationException".into(),
                message: m()
            }
        );
        assert_eq!(
            from_response(400, Some("SerializationException"), m(), None).category(),
            "invalid"
        );
        assert_eq!(
            from_response(401, Some("UnauthorizedException"), m(), None).category(),
            "unauthorized"
        );
        assert_eq!(
            from_response(403, Some("AccessDeniedException"), m(), None).category(),
            "unauthorized"
        );
        assert_eq!(
            from_response(400, Some("LimitExceededException"), m(), None).category(),
            "throttled"
        );
        assert_eq!(
            from_response(409, Some("ConflictException"), m(), None).category(),
            "conflict"
        );
    }

    #[test]
    fn statuses_when_the_code_is_unknown() {
        let secs = Some(Duration::from_secs(2));
        let throttled = from_response(429, None, m(), secs);
        assert_eq!(throttled.category(), "throttled");
        assert_eq!(throttled.retry_after(), secs);
        assert!(throttled.is_retryable());
        assert_eq!(from_response(404, None, m(), None).category(), "not_found");
        assert_eq!(from_response(409, None, m(), None).category(), "conflict");
        assert_eq!(
            from_response(403, None, m(), None),
            AwsError::Unauthorized {
                code: "HTTP403".into(),
                message: m()
            }
        );
        let unavailable = from_response(503, Some("ServiceUnavailableException"), m(), secs);
        assert_eq!(unavailable.category(), "server");
        assert_eq!(unavailable.retry_after(), secs);
        assert_eq!(from_response(502, None, m(), None).category(), "server");
        // Only a 400 is a verdict on the spec: an unknown 4xx or a 2xx that is no answer is not.
        assert_eq!(from_response(400, None, m(), None).category(), "invalid");
        assert_eq!(from_response(418, None, m(), None).category(), "server");
        assert_eq!(from_response(200, None, m(), None).category(), "server");
        assert!(from_response(413, None, m(), None).is_retryable());
    }

    #[test]
    fn a_retryable_message_names_the_call_and_aws_messages_stay_as_written() {
        let e = AwsError::retryable(RetryKind::Timeout, "request timed out")
            .in_call("UpdateIntegration");
        assert_eq!(e.message(), "UpdateIntegration: request timed out");
        let nf = AwsError::NotFound {
            message: "Invalid Integration identifier specified".into(),
        };
        assert_eq!(nf.clone().in_call("GetIntegration"), nf);
    }

    #[test]
    fn retry_after_is_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn display_keeps_aws_text() {
        let e = AwsError::Invalid {
            code: "BadRequestException".into(),
            message: "Invalid patch path /x".into(),
        };
        assert_eq!(e.to_string(), "BadRequestException: Invalid patch path /x");
        assert_eq!(e.message(), "Invalid patch path /x");
    }
}
