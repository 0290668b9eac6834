//! AWS stores an input-passthrough mapping template as `null` and answers
//! `{"requestTemplates": {"application/json": null}}`. aws-sdk-apigateway treats these maps as
//! dense maps and fails to parse such an answer ("dense map cannot contain null values"), which
//! would make every integration with a passthrough template unreadable.
//!
//! [`NullMapValues`] fixes that in one place: an SDK interceptor that, before the SDK parses a
//! successful JSON answer, rewrites `null` values inside the `requestTemplates`,
//! `responseTemplates`, `requestParameters` and `responseParameters` maps (at any depth: in an
//! Integration, its integration responses, and the methods embedded in GetResources) to `""`.
//! `""` is what a manifest uses for a passthrough template, and what the operator's
//! [`crate::integration::Integration`] normalises `null` to.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_apigateway::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_apigateway::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use serde_json::Value;

/// The maps whose `null` values become `""`.
const NULLABLE_MAPS: &[&str] = &[
    "requestTemplates",
    "responseTemplates",
    "requestParameters",
    "responseParameters",
];

/// Rewrites `null` map values in `body`; `None` when nothing changed (or it is not JSON).
pub(crate) fn fix_null_map_values(body: &[u8]) -> Option<Vec<u8>> {
    // Cheap test first: most answers carry no null at all.
    if !body.windows(4).any(|w| w == b"null") {
        return None;
    }
    let mut value: Value = serde_json::from_slice(body).ok()?;
    if walk(&mut value) {
        serde_json::to_vec(&value).ok()
    } else {
        None
    }
}

fn walk(value: &mut Value) -> bool {
    let mut changed = false;
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if NULLABLE_MAPS.contains(&key.as_str()) {
                    if let Value::Object(map) = child {
                        for v in map.values_mut() {
                            if v.is_null() {
                                *v = Value::String(String::new());
                                changed = true;
                            }
                        }
                    }
                }
                changed |= walk(child);
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= walk(item);
            }
        }
        _ => {}
    }
    changed
}

/// The interceptor; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct NullMapValues;

impl Intercept for NullMapValues {
    fn name(&self) -> &'static str {
        "NullMapValues"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        if !response.status().is_success() {
            return Ok(());
        }
        if let Some(content_type) = response.headers().get("content-type") {
            if !content_type.to_ascii_lowercase().contains("json") {
                return Ok(());
            }
        }
        let body = response.take_body();
        let fixed = match body.bytes() {
            // Already in memory (tests, replayed responses): fix it now.
            Some(bytes) => match fix_null_map_values(bytes) {
                Some(fixed) => SdkBody::from(fixed),
                None => body,
            },
            // Streaming from the connection: fix it when the SDK reads it to the end, which it
            // does for every API Gateway operation this crate calls (none streams).
            None => SdkBody::from_body_1_x(FixedBody::new(body)),
        };
        *response.body_mut() = fixed;
        // The length changes; nobody needs it after this point.
        response.headers_mut().remove("content-length");
        Ok(())
    }
}

/// A body that buffers the whole inner body, then yields it fixed as one frame.
struct FixedBody {
    inner: SdkBody,
    buffer: BytesMut,
    trailers: Option<http::HeaderMap>,
    state: State,
}

#[derive(PartialEq, Eq)]
enum State {
    Reading,
    Trailers,
    Done,
}

impl FixedBody {
    fn new(inner: SdkBody) -> Self {
        FixedBody {
            inner,
            buffer: BytesMut::new(),
            trailers: None,
            state: State::Reading,
        }
    }
}

impl Body for FixedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match this.state {
                State::Done => return Poll::Ready(None),
                State::Trailers => {
                    this.state = State::Done;
                    if let Some(trailers) = this.trailers.take() {
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                }
                State::Reading => match Pin::new(&mut this.inner).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Err(e))) => {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => this.buffer.extend_from_slice(&data),
                        Err(frame) => {
                            if let Ok(trailers) = frame.into_trailers() {
                                this.trailers = Some(trailers);
                            }
                        }
                    },
                    Poll::Ready(None) => {
                        this.state = State::Trailers;
                        let raw = std::mem::take(&mut this.buffer).freeze();
                        let data = match fix_null_map_values(&raw) {
                            Some(fixed) => Bytes::from(fixed),
                            None => raw,
                        };
                        if !data.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_in_the_four_maps_become_empty_strings() {
        let body =
            br#"{"type":"MOCK","requestTemplates":{"application/json":null,"text/plain":"x"},
            "requestParameters":{"integration.request.header.a":null},
            "integrationResponses":{"200":{"responseTemplates":{"application/json":null},
            "responseParameters":{"method.response.header.b":null}}},
            "connectionId":null}"#;
        let fixed: Value = serde_json::from_slice(&fix_null_map_values(body).unwrap()).unwrap();
        assert_eq!(fixed["requestTemplates"]["application/json"], "");
        assert_eq!(fixed["requestTemplates"]["text/plain"], "x");
        assert_eq!(
            fixed["requestParameters"]["integration.request.header.a"],
            ""
        );
        let response = &fixed["integrationResponses"]["200"];
        assert_eq!(response["responseTemplates"]["application/json"], "");
        assert_eq!(
            response["responseParameters"]["method.response.header.b"],
            ""
        );
        // Nulls elsewhere are left to the SDK (it reads a null member as absent).
        assert!(fixed["connectionId"].is_null());
    }

    #[test]
    fn embedded_methods_of_get_resources_are_fixed() {
        let body = br#"{"items":[{"id":"r1","path":"/","resourceMethods":{"GET":
            {"methodIntegration":{"requestTemplates":{"application/json":null}}}}}]}"#;
        let fixed: Value = serde_json::from_slice(&fix_null_map_values(body).unwrap()).unwrap();
        assert_eq!(
            fixed["items"][0]["resourceMethods"]["GET"]["methodIntegration"]["requestTemplates"]
                ["application/json"],
            ""
        );
    }

    #[test]
    fn untouched_bodies_are_not_rewritten() {
        assert_eq!(fix_null_map_values(br#"{"type":"HTTP"}"#), None);
        assert_eq!(fix_null_map_values(br#"{"connectionId":null}"#), None);
        assert_eq!(fix_null_map_values(b"not json null"), None);
        assert_eq!(fix_null_map_values(b""), None);
    }

    /// A body that yields these chunks one by one.
    struct Chunks(std::collections::VecDeque<&'static [u8]>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(
                self.0
                    .pop_front()
                    .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk)))),
            )
        }
    }

    #[tokio::test]
    async fn streaming_bodies_are_fixed_at_the_end() {
        let chunks = Chunks(
            [
                &b"{\"requestTemplates\":"[..],
                &b"{\"application/json\":nu"[..],
                &b"ll}}"[..],
            ]
            .into(),
        );
        let mut body = FixedBody::new(SdkBody::from_body_1_x(chunks));
        let mut collected = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Ok(data) = frame.unwrap().into_data() {
                collected.extend_from_slice(&data);
            }
        }
        assert!(body.is_end_stream());
        assert_eq!(
            collected,
            br#"{"requestTemplates":{"application/json":""}}"#
        );
    }
}
