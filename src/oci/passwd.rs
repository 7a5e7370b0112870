//! `/etc/passwd` and `/etc/group`: the colon-separated files that name users
//! and groups. Reading what a base has, and appending entries.

/// The files of an image with only root, for a base that has none (scratch).
pub const ROOT_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n";
pub const ROOT_GROUP: &str = "root:x:0:\n";

/// The id (third field) of the entry named `name`: `None` when there is no
/// such entry, `Some(None)` when its id is not a number.
pub fn id_of(file: &str, name: &str) -> Option<Option<u32>> {
    file.lines()
        .find(|l| l.split(':').next() == Some(name))
        .map(|l| l.split(':').nth(2).and_then(|u| u.parse::<u32>().ok()))
}

/// Whether some entry has `id` as its id.
pub fn has_id(file: &str, id: u32) -> bool {
    let id = id.to_string();
    file.lines()
        .any(|l| l.split(':').nth(2) == Some(id.as_str()))
}

/// `file` with a user entry appended (ending in a newline).
pub fn with_user(file: &str, name: &str, uid: u32, gid: u32, home: &str) -> String {
    let mut out = ended(file);
    out.push_str(&format!("{name}:x:{uid}:{gid}::{home}:/bin/sh\n"));
    out
}

/// `file` with a group entry appended (ending in a newline).
pub fn with_group(file: &str, name: &str, gid: u32) -> String {
    let mut out = ended(file);
    out.push_str(&format!("{name}:x:{gid}:\n"));
    out
}

/// `file` ending in a newline (unless empty), so an entry can follow.
pub fn ended(file: &str) -> String {
    let mut s = file.to_owned();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_appends() {
        let passwd = "root:x:0:0::/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash";
        assert_eq!(id_of(passwd, "ubuntu"), Some(Some(1000)));
        assert_eq!(id_of(passwd, "app"), None);
        assert!(has_id(passwd, 1000));
        assert!(!has_id(passwd, 1001));
        let more = with_user(passwd, "app", 1001, 1001, "/home/app");
        assert!(more.ends_with("/bin/bash\napp:x:1001:1001::/home/app:/bin/sh\n"));
        assert_eq!(with_group("", "app", 7), "app:x:7:\n");
    }
}
