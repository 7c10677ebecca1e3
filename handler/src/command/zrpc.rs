//! ZRPC requests and replies (reference §6.6), pure.
//!
//! Request: tnetstring map `{"id"?, "method", "args"?}`. A request that is not such a map,
//! or has no byte-string `method`, gets no reply (Pushpin 1.36 ignores it: observed).
//! Reply keys are written in the order Pushpin 1.36 was observed to use:
//! `{"id", "value", "success": true}` and `{"id", "condition", "value"?, "success": false}`;
//! `id` is left out when the request had none.

use holdfast_proto::tnetstring::{self, TnetError, Value};

/// One parsed request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// `id`, echoed in the reply.
    pub id: Option<Vec<u8>>,
    /// `method`.
    pub method: Vec<u8>,
    /// `args` (an empty map when absent).
    pub args: Value,
}

/// Why a message is not a request (logged; no reply).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not a tnetstring.
    #[error("not a tnetstring: {0}")]
    Tnetstring(#[from] TnetError),
    /// Not a map.
    #[error("request is not a map")]
    NotAMap,
    /// No byte-string `method`.
    #[error("request has no method")]
    NoMethod,
}

/// Parses a request payload.
pub fn parse_request(payload: &[u8]) -> Result<Request, RequestError> {
    let value = tnetstring::parse(payload)?;
    if value.as_map().is_none() {
        return Err(RequestError::NotAMap);
    }
    let method = value
        .get(b"method")
        .and_then(Value::as_bytes)
        .ok_or(RequestError::NoMethod)?
        .to_vec();
    let id = value
        .get(b"id")
        .and_then(Value::as_bytes)
        .map(<[u8]>::to_vec);
    let args = match value.get(b"args") {
        Some(args @ Value::Map(_)) => args.clone(),
        _ => Value::Map(Vec::new()),
    };
    Ok(Request { id, method, args })
}

/// The result of one method call.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `success: true` with `value`.
    Success(Value),
    /// `success: false` with `condition` and an optional `value`.
    Failure {
        /// `bad-request`, `method-not-found`, `item-not-found`, ...
        condition: &'static str,
        /// Detail.
        value: Option<Value>,
    },
}

impl Outcome {
    /// A failure without detail.
    pub fn fail(condition: &'static str) -> Self {
        Self::Failure {
            condition,
            value: None,
        }
    }
}

/// Encodes the reply to a request with `id`.
pub fn encode_reply(id: Option<&[u8]>, outcome: &Outcome) -> Vec<u8> {
    let mut pairs: Vec<(&[u8], Value)> = Vec::with_capacity(4);
    if let Some(id) = id {
        pairs.push((b"id", Value::bytes(id)));
    }
    match outcome {
        Outcome::Success(value) => {
            pairs.push((b"value", value.clone()));
            pairs.push((b"success", Value::Bool(true)));
        }
        Outcome::Failure { condition, value } => {
            pairs.push((b"condition", Value::bytes(condition.as_bytes())));
            if let Some(value) = value {
                pairs.push((b"value", value.clone()));
            }
            pairs.push((b"success", Value::Bool(false)));
        }
    }
    tnetstring::to_vec(&Value::map(pairs))
}

/// The `get-zmq-uris` value: only the sockets that exist, in Pushpin's observed order.
pub fn zmq_uris(command: Option<&str>, pull: Option<&str>, sub_bind: Option<&str>) -> Value {
    let mut pairs: Vec<(&[u8], Value)> = Vec::new();
    if let Some(pull) = pull {
        pairs.push((b"publish-pull", Value::bytes(pull.as_bytes())));
    }
    if let Some(sub) = sub_bind {
        pairs.push((b"publish-sub", Value::bytes(sub.as_bytes())));
    }
    if let Some(command) = command {
        pairs.push((b"command", Value::bytes(command.as_bytes())));
    }
    Value::map(pairs)
}

/// `conncheck`'s `ids`: a list of byte strings, else `None` (`bad-request`).
pub fn conncheck_ids(args: &Value) -> Option<Vec<String>> {
    args.get(b"ids")?
        .as_list()?
        .iter()
        .map(|v| {
            v.as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        })
        .collect()
}

/// What `refresh` is asked to refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshTarget {
    /// One WebSocket connection.
    Cid(String),
    /// Every WebSocket connection subscribed to a channel.
    Channel(String),
}

/// `refresh`'s args (`cid` wins over `channel`), else `None` (`bad-request`).
pub fn refresh_target(args: &Value) -> Option<RefreshTarget> {
    let text = |key: &[u8]| {
        args.get(key)
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    text(b"cid")
        .map(RefreshTarget::Cid)
        .or_else(|| text(b"channel").map(RefreshTarget::Channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_match_pushpin_bytes() {
        assert_eq!(
            encode_reply(Some(b"1"), &Outcome::Success(Value::Null)),
            b"37:2:id,1:1,5:value,0:~7:success,4:true!}"
        );
        assert_eq!(
            encode_reply(Some(b"1"), &Outcome::fail("method-not-found")),
            b"59:2:id,1:1,9:condition,16:method-not-found,7:success,5:false!}"
        );
        assert_eq!(
            encode_reply(None, &Outcome::Success(Value::Null)),
            b"28:5:value,0:~7:success,4:true!}"
        );
        let bad = Outcome::Failure {
            condition: "bad-request",
            value: Some(Value::bytes(
                &b"Invalid format: object does not contain 'items'"[..],
            )),
        };
        assert_eq!(
            encode_reply(Some(b"1"), &bad),
            &b"113:2:id,1:1,9:condition,11:bad-request,5:value,47:Invalid format: object does not contain 'items',7:success,5:false!}"[..]
        );
        let uris = zmq_uris(
            Some("tcp://127.0.0.1:15563"),
            Some("tcp://127.0.0.1:15560"),
            Some("tcp://127.0.0.1:15562"),
        );
        assert_eq!(
            encode_reply(Some(b"1"), &Outcome::Success(uris)),
            &b"155:2:id,1:1,5:value,116:12:publish-pull,21:tcp://127.0.0.1:15560,11:publish-sub,21:tcp://127.0.0.1:15562,7:command,21:tcp://127.0.0.1:15563,}7:success,4:true!}"[..]
        );
    }

    #[test]
    fn requests() {
        let r = parse_request(b"28:2:id,1:1,6:method,7:recover,}").unwrap();
        assert_eq!(r.id.as_deref(), Some(&b"1"[..]));
        assert_eq!(r.method, b"recover");
        assert_eq!(r.args, Value::Map(Vec::new()));
        let r = parse_request(b"19:6:method,7:recover,}").unwrap();
        assert_eq!(r.id, None);
        assert_eq!(parse_request(b"9:2:id,1:1,}"), Err(RequestError::NoMethod));
        assert_eq!(parse_request(b"4:abcd,"), Err(RequestError::NotAMap));
        assert!(matches!(
            parse_request(b"garbage"),
            Err(RequestError::Tnetstring(_))
        ));
    }

    #[test]
    fn args() {
        let ids = Value::map([(
            &b"ids"[..],
            Value::List(vec![
                Value::bytes(&b"w:1-1"[..]),
                Value::bytes(&b"w:2-1"[..]),
            ]),
        )]);
        assert_eq!(
            conncheck_ids(&ids),
            Some(vec!["w:1-1".to_string(), "w:2-1".to_string()])
        );
        assert_eq!(conncheck_ids(&Value::Map(Vec::new())), None);
        let wrong = Value::map([(&b"ids"[..], Value::bytes(&b"x"[..]))]);
        assert_eq!(conncheck_ids(&wrong), None);
        let ch = Value::map([(&b"channel"[..], Value::bytes(&b"c"[..]))]);
        assert_eq!(
            refresh_target(&ch),
            Some(RefreshTarget::Channel("c".into()))
        );
        let cid = Value::map([(&b"cid"[..], Value::bytes(&b"x"[..]))]);
        assert_eq!(refresh_target(&cid), Some(RefreshTarget::Cid("x".into())));
        assert_eq!(refresh_target(&Value::Map(Vec::new())), None);
    }
}
