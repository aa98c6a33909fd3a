//! The Git LFS batch API's JSON (basic transfer, sha256): what mlgit asks and what servers answer,
//! read leniently (`header: null`, missing `actions`, `expires_in` or `expires_at`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The media type of batch requests and replies.
pub const MEDIA_TYPE: &str = "application/vnd.git-lfs+json";

/// Actions whose expiry is this close are asked for again instead of used.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

#[derive(Serialize)]
pub struct Request<'a> {
    pub operation: &'a str,
    pub transfers: [&'a str; 1],
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<RefName<'a>>,
    pub objects: Vec<RequestObject>,
    pub hash_algo: &'a str,
}

#[derive(Serialize)]
pub struct RefName<'a> {
    pub name: &'a str,
}

#[derive(Serialize)]
pub struct RequestObject {
    pub oid: String,
    pub size: u64,
}

#[derive(Deserialize, Debug)]
pub struct Response {
    #[serde(default)]
    pub transfer: Option<String>,
    #[serde(default)]
    pub objects: Vec<ResponseObject>,
}

#[derive(Deserialize, Debug)]
pub struct ResponseObject {
    pub oid: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub actions: Option<Actions>,
    #[serde(default)]
    pub error: Option<ObjectError>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Actions {
    #[serde(default)]
    pub upload: Option<Action>,
    #[serde(default)]
    pub download: Option<Action>,
    #[serde(default)]
    pub verify: Option<Action>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Action {
    pub href: String,
    #[serde(default)]
    pub header: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct ObjectError {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
}

/// The `{"message": …}` body of a refused request.
#[derive(Deserialize)]
pub struct ServerMessage {
    #[serde(default)]
    pub message: String,
}

impl Action {
    /// The headers to send with the action (none when the server sent `null`).
    pub fn headers(&self) -> impl Iterator<Item = (&String, &String)> {
        self.header.iter().flatten()
    }

    /// Whether the action expires (or has expired) before it could be used, counted from
    /// `received`, when the batch reply arrived.
    pub fn expired(&self, received: Instant) -> bool {
        let now = Instant::now();
        if let Some(secs) = self.expires_in.filter(|s| *s > 0) {
            let until = received + Duration::from_secs(secs as u64);
            return until <= now + EXPIRY_MARGIN;
        }
        if let Some(at) = self.expires_at.as_deref() {
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(at) {
                // The zero time (`0001-01-01T00:00:00Z`) means "never", as in git-lfs.
                if at.timestamp() <= 0 {
                    return false;
                }
                let left = at.timestamp() - chrono::Utc::now().timestamp();
                return left <= EXPIRY_MARGIN.as_secs() as i64;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_with_null_headers_and_missing_actions_are_read() {
        let text = r#"{"transfer":"basic","objects":[
            {"oid":"aa","size":1,"authenticated":true,"actions":{"upload":{"href":"http://x/a","header":null,"expires_in":3600}}},
            {"oid":"bb","size":2},
            {"oid":"cc","size":3,"error":{"code":404,"message":"Object does not exist"}}]}"#;
        let reply: Response = serde_json::from_str(text).unwrap();
        assert_eq!(reply.objects.len(), 3);
        let up = reply.objects[0].actions.as_ref().unwrap().upload.as_ref().unwrap();
        assert_eq!(up.headers().count(), 0);
        assert!(!up.expired(Instant::now()));
        assert!(reply.objects[1].actions.is_none());
        assert_eq!(reply.objects[2].error.as_ref().unwrap().code, 404);
    }

    #[test]
    fn expiry_is_read_from_either_field() {
        let soon = Action { href: "h".into(), header: None, expires_in: Some(5), expires_at: None };
        assert!(soon.expired(Instant::now()));
        let past = Action {
            href: "h".into(),
            header: None,
            expires_in: None,
            expires_at: Some("2001-01-01T00:00:00Z".into()),
        };
        assert!(past.expired(Instant::now()));
        let never = Action {
            href: "h".into(),
            header: None,
            expires_in: None,
            expires_at: Some("0001-01-01T00:00:00Z".into()),
        };
        assert!(!never.expired(Instant::now()));
    }

    #[test]
    fn requests_carry_ref_and_hash_algo() {
        let req = Request {
            operation: "upload",
            transfers: ["basic"],
            reference: Some(RefName { name: "refs/heads/main" }),
            objects: vec![RequestObject { oid: "aa".into(), size: 1 }],
            hash_algo: "sha256",
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["ref"]["name"], "refs/heads/main");
        assert_eq!(v["hash_algo"], "sha256");
        assert_eq!(v["transfers"][0], "basic");
    }
}
