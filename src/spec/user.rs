//! The spec's `user`: `name`, `name:uid`, `name:uid:gid`, `uid` or `uid:gid`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl User {
    pub fn parse(s: &str) -> Result<Self, String> {
        // `.` and `..` would make the home directory `/home/..`.
        let name_ok = |n: &str| {
            !n.is_empty()
                && n != "."
                && n != ".."
                && n.len() <= 32
                && !n.starts_with('-')
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        };
        let first = s.split(':').next().unwrap_or_default();
        if first.len() > 32 {
            return Err(format!("user name {first:?} is longer than 32 characters"));
        }
        if !name_ok(first) {
            return Err(format!("{first:?} is not a user name"));
        }
        let parts: Vec<&str> = s.split(':').collect();
        let id = |p: &str| {
            p.parse::<u32>()
                .map_err(|_| format!("{p:?} is not a numeric id"))
        };
        let bad = || format!("{s:?} is not a user");
        match parts.as_slice() {
            [""] => Err(bad()),
            [n] => Ok(match n.parse::<u32>() {
                Ok(uid) => Self {
                    name: None,
                    uid: Some(uid),
                    gid: None,
                },
                Err(_) => Self {
                    name: Some((*n).to_owned()),
                    uid: None,
                    gid: None,
                },
            }),
            [n, second] => match n.parse::<u32>() {
                Ok(uid) => Ok(Self {
                    name: None,
                    uid: Some(uid),
                    gid: Some(id(second)?),
                }),
                Err(_) => Ok(Self {
                    name: Some((*n).to_owned()),
                    uid: Some(id(second)?),
                    gid: None,
                }),
            },
            [n, uid, gid] if n.parse::<u32>().is_err() && !n.is_empty() => Ok(Self {
                name: Some((*n).to_owned()),
                uid: Some(id(uid)?),
                gid: Some(id(gid)?),
            }),
            _ => Err(bad()),
        }
    }
}

/// As written in the spec.
impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            self.name.clone(),
            self.uid.map(|u| u.to_string()),
            self.gid.map(|g| g.to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        f.write_str(&parts.join(":"))
    }
}

/// Dumps (plan, spec) show the user as written.
impl serde::Serialize for User {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
