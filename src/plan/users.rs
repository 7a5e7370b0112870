//! What the spec's `user` means for the image: the config's `User`, and
//! whether the frontend must write passwd and group files (with which
//! contents) to make a named user exist.

use super::{BaseUsers, Plan, PlanError};
use crate::oci::passwd;
use crate::spec::User;

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

/// The config's `User`. Docker reads `a:b` as user and *group*, so
/// `name:uid` cannot be passed through; on scratch, where we write the
/// passwd file ourselves, the numeric form needs no lookup at all.
pub fn config_value(user: &User, on_scratch: bool) -> String {
    match (&user.name, user.uid, user.gid) {
        (Some(name), _, _) if !on_scratch => name.clone(),
        // A bare uid keeps Docker's meaning (group from passwd, else 0).
        (None, Some(uid), None) if !on_scratch => uid.to_string(),
        _ => {
            let uid = user.uid.unwrap_or(DEFAULT_UID);
            format!("{uid}:{}", user.gid.unwrap_or(uid))
        }
    }
}

/// What an image needs so that `user` exists: the base's files (root-only
/// ones where the base has none) with the user and its group added.
/// Numeric users without a name need nothing.
fn files_for(user: &User, base: Option<&BaseUsers>) -> Option<UserFiles> {
    let name = user.name.as_ref()?;
    let base_passwd = base.and_then(|b| b.passwd.as_deref());
    let base_group = base.and_then(|b| b.group.as_deref());
    // Without a uid: the first id from 1000 up that the base uses neither as
    // a uid nor as a gid (ubuntu:24.04 has 1000 taken).
    let uid = user.uid.unwrap_or_else(|| {
        (DEFAULT_UID..)
            .find(|id| {
                !base_passwd.is_some_and(|f| passwd::has_id(f, *id))
                    && !base_group.is_some_and(|f| passwd::has_id(f, *id))
            })
            .unwrap_or(DEFAULT_UID)
    });
    let gid = user.gid.unwrap_or(uid);
    let home = format!("/home/{name}");
    let passwd_file = base_passwd.unwrap_or(passwd::ROOT_PASSWD);
    let group_file = base_group.unwrap_or(passwd::ROOT_GROUP);
    // A group with that id exists already: no second one.
    let group = if passwd::has_id(group_file, gid) {
        passwd::ended(group_file)
    } else {
        passwd::with_group(group_file, name, gid)
    };
    Some(UserFiles {
        passwd: passwd::with_user(passwd_file, name, uid, gid, &home),
        group,
        home,
        uid,
        gid,
    })
}

/// The files that make the spec's user exist: always for a named user on
/// scratch; on another base when its `/etc/passwd` (after `image.run`) lacks
/// the name. `base` is what the bridge read from the base (`None` on scratch).
pub fn user_files(plan: &Plan, base: Option<&BaseUsers>) -> Result<Option<UserFiles>, PlanError> {
    let Some(u) = &plan.image.spec.user else {
        return Ok(None);
    };
    let user = &u.value;
    let Some(name) = &user.name else {
        return Ok(None);
    };
    if plan.image.base.is_none() {
        return Ok(files_for(user, None));
    }
    let empty = BaseUsers::default();
    let base = base.unwrap_or(&empty);
    match base.passwd.as_deref().and_then(|f| passwd::id_of(f, name)) {
        None => Ok(files_for(user, Some(base))),
        // The base has the name: a different uid in the spec is a conflict.
        Some(existing) if user.uid.is_some() && existing != user.uid => Err(PlanError::Image {
            key: "image.user",
            message: format!(
                "the base already has user `{name}` with uid {}, not {}",
                existing.map_or_else(|| "?".to_owned(), |u| u.to_string()),
                user.uid.unwrap_or_default()
            ),
            hint: format!("write user = \"{name}\" to use the base's, or choose another name"),
            span: u.span,
        }),
        Some(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(passwd: &str, group: &str) -> BaseUsers {
        BaseUsers {
            passwd: Some(passwd.into()),
            group: Some(group.into()),
        }
    }

    #[test]
    fn config_values() {
        let u = User::parse("valnix:1024").unwrap();
        assert_eq!(config_value(&u, true), "1024:1024");
        assert_eq!(config_value(&u, false), "valnix");
        let u = User::parse("1000:2000").unwrap();
        assert_eq!(config_value(&u, true), "1000:2000");
        assert!(files_for(&u, None).is_none());
        assert_eq!(config_value(&User::parse("1234").unwrap(), false), "1234");
    }

    #[test]
    fn files_for_a_named_user_on_scratch() {
        let f = files_for(&User::parse("app").unwrap(), None).unwrap();
        assert_eq!(f.uid, 1000);
        assert_eq!(f.home, "/home/app");
        assert_eq!(
            f.passwd,
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
        );
        assert_eq!(f.group, "root:x:0:\napp:x:1000:\n");
    }

    #[test]
    fn picks_a_free_id_on_a_base() {
        let b = base(
            "root:x:0:0::/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n",
            "root:x:0:\nubuntu:x:1000:\n",
        );
        let f = files_for(&User::parse("app").unwrap(), Some(&b)).unwrap();
        assert_eq!((f.uid, f.gid), (1001, 1001));
        assert!(f.group.ends_with("app:x:1001:\n"));
    }

    #[test]
    fn files_extend_the_base() {
        let b = base(
            "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:/bin/false",
            "root:x:0:\nstaff:x:1024:\n",
        );
        let f = files_for(&User::parse("valnix:1024").unwrap(), Some(&b)).unwrap();
        assert_eq!(
            f.passwd,
            "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:/bin/false\nvalnix:x:1024:1024::/home/valnix:/bin/sh\n"
        );
        // gid 1024 exists already: no second group with that id.
        assert_eq!(f.group, "root:x:0:\nstaff:x:1024:\n");
    }

    #[test]
    fn a_base_without_the_files_is_like_scratch() {
        let none = BaseUsers {
            passwd: None,
            group: None,
        };
        let f = files_for(&User::parse("app").unwrap(), Some(&none)).unwrap();
        assert!(
            f.passwd.starts_with("root:x:0:0:"),
            "root kept: {}",
            f.passwd
        );
        assert!(f.group.starts_with("root:x:0:\n"));
    }
}
