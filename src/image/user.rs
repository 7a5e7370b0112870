//! What the spec's `user` means for the image: the config's `User`, and the
//! passwd and group files that make a named user exist.

use crate::plan::BaseUsers;
pub use crate::spec::User;

/// The uid a named user gets when the spec gives none.
const DEFAULT_UID: u32 = 1000;

/// `/etc/passwd`, `/etc/group` and a home directory, with fixed contents.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UserFiles {
    pub passwd: String,
    pub group: String,
    pub home: String,
    pub uid: u32,
    pub gid: u32,
}

impl User {
    /// The config's `User`. Docker reads `a:b` as user and *group*, so
    /// `name:uid` cannot be passed through; on scratch, where we write the
    /// passwd file ourselves, the numeric form needs no lookup at all.
    pub fn config_value(&self, on_scratch: bool) -> String {
        match (&self.name, self.uid, self.gid) {
            (Some(name), _, _) if !on_scratch => name.clone(),
            // A bare uid keeps Docker's meaning (group from passwd, else 0).
            (None, Some(uid), None) if !on_scratch => uid.to_string(),
            _ => {
                let uid = self.uid.unwrap_or(DEFAULT_UID);
                format!("{uid}:{}", self.gid.unwrap_or(uid))
            }
        }
    }

    /// What an image needs so that the user exists: the base's files (a
    /// root-only pair on scratch) with the user and its group added. Numeric
    /// users without a name need nothing.
    pub fn files(&self, base: Option<&BaseUsers>) -> Option<UserFiles> {
        let name = self.name.as_ref()?;
        // Without a uid: the first id from 1000 up that the base uses
        // neither as a uid nor as a gid (ubuntu:24.04 has 1000 taken).
        let taken = |file: Option<&str>, id: u32| {
            file.is_some_and(|f| {
                f.lines()
                    .any(|l| l.split(':').nth(2) == Some(id.to_string().as_str()))
            })
        };
        let uid = self.uid.unwrap_or_else(|| {
            (DEFAULT_UID..)
                .find(|id| {
                    !taken(base.map(|b| b.passwd.as_str()), *id)
                        && !taken(base.map(|b| b.group.as_str()), *id)
                })
                .unwrap_or(DEFAULT_UID)
        });
        let gid = self.gid.unwrap_or(uid);
        let home = format!("/home/{name}");
        let (mut passwd, mut group) = match base {
            Some(b) => (b.passwd.clone(), b.group.clone()),
            None => (
                "root:x:0:0:root:/root:/bin/sh\n".to_owned(),
                "root:x:0:\n".to_owned(),
            ),
        };
        for file in [&mut passwd, &mut group] {
            if !file.is_empty() && !file.ends_with('\n') {
                file.push('\n');
            }
        }
        passwd.push_str(&format!("{name}:x:{uid}:{gid}::{home}:/bin/sh\n"));
        if !taken(Some(&group), gid) {
            group.push_str(&format!("{name}:x:{gid}:\n"));
        }
        Some(UserFiles {
            passwd,
            group,
            home,
            uid,
            gid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let u = User::parse("valnix:1024").unwrap();
        assert_eq!(
            (u.name.as_deref(), u.uid, u.gid),
            (Some("valnix"), Some(1024), None)
        );
        assert_eq!(u.config_value(true), "1024:1024");
        assert_eq!(u.config_value(false), "valnix");
        let u = User::parse("1000:2000").unwrap();
        assert_eq!(u.config_value(true), "1000:2000");
        assert!(u.files(None).is_none());
        assert!(User::parse("a:b").is_err());
        assert!(User::parse("").is_err());
        assert!(User::parse("1:2:3").is_err());
    }

    #[test]
    fn files_for_a_named_user() {
        let f = User::parse("app").unwrap().files(None).unwrap();
        assert_eq!(f.uid, 1000);
        assert_eq!(f.home, "/home/app");
        assert!(f.passwd.ends_with("app:x:1000:1000::/home/app:/bin/sh\n"));
    }

    #[test]
    fn picks_a_free_id_on_a_base() {
        let base = BaseUsers {
            passwd: "root:x:0:0::/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n"
                .into(),
            group: "root:x:0:\nubuntu:x:1000:\n".into(),
        };
        let f = User::parse("app").unwrap().files(Some(&base)).unwrap();
        assert_eq!((f.uid, f.gid), (1001, 1001));
        assert!(f.group.ends_with("app:x:1001:\n"));
        assert_eq!(User::parse("1234").unwrap().config_value(false), "1234");
    }

    #[test]
    fn files_extend_the_base() {
        let base = BaseUsers {
            passwd: "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:/bin/false".into(),
            group: "root:x:0:\nstaff:x:1024:\n".into(),
        };
        let f = User::parse("valnix:1024")
            .unwrap()
            .files(Some(&base))
            .unwrap();
        assert_eq!(
            f.passwd,
            "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:/bin/false\nvalnix:x:1024:1024::/home/valnix:/bin/sh\n"
        );
        // gid 1024 exists already: no second group with that id.
        assert_eq!(f.group, "root:x:0:\nstaff:x:1024:\n");
    }
}
