//! What a minimal image needs to run real programs, added on `scratch`
//! (a base image has its own): a writable `/tmp`, `/etc/nsswitch.conf`, the
//! closure's CA bundle and time zones where programs look for them, and,
//! when asked, a Nix database registering the closure. Each is its own small
//! layer with fixed contents, so it stays a cache hit across builds.

use serde::Serialize;

use super::{Plan, Report};
use crate::spec::Defaults;

/// Where programs look for the CA bundle (OpenSSL's Debian path, and
/// `SSL_CERT_FILE`).
pub const CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where programs look for zone files (`TZDIR`).
pub const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";
/// What `/etc/nsswitch.conf` says: users and hosts from files, then DNS.
pub const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n";

/// One essential layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Essential {
    /// `/tmp`, mode 1777.
    Tmp,
    Nsswitch,
    /// `CA_FILE` → the bundle in the closure.
    CaCertificates {
        bundle: String,
    },
    /// `ZONEINFO_DIR` → the zone files in the closure.
    Zoneinfo {
        dir: String,
    },
}

/// The essentials of `plan`'s image, for what nix built.
pub fn essentials(plan: &Plan, built: &Report) -> Vec<Essential> {
    if plan.image.base.is_some() {
        return Vec::new();
    }
    let Defaults {
        tmp,
        nsswitch,
        ca_certificates,
        zoneinfo,
    } = plan.image.spec.defaults;
    // nixpkgs' names: `nss-cacert-<version>` (etc/ssl/certs/ca-bundle.crt)
    // and `tzdata-<version>` (share/zoneinfo).
    let find = |name: &str| {
        built.closure.iter().map(|p| p.path.as_str()).find(|p| {
            p.rsplit('/')
                .next()
                .and_then(|b| b.split_once('-'))
                .is_some_and(|(_, n)| n.starts_with(name))
        })
    };
    let mut out = Vec::new();
    if tmp {
        out.push(Essential::Tmp);
    }
    if nsswitch {
        out.push(Essential::Nsswitch);
    }
    if ca_certificates && let Some(p) = find("nss-cacert-") {
        out.push(Essential::CaCertificates {
            bundle: format!("{p}/etc/ssl/certs/ca-bundle.crt"),
        });
    }
    if zoneinfo && let Some(p) = find("tzdata-") {
        out.push(Essential::Zoneinfo {
            dir: format!("{p}/share/zoneinfo"),
        });
    }
    out
}

impl Essential {
    /// The environment the image gets with it (when not set otherwise).
    pub fn env(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::CaCertificates { .. } => Some(("SSL_CERT_FILE", CA_FILE)),
            Self::Zoneinfo { .. } => Some(("TZDIR", ZONEINFO_DIR)),
            _ => None,
        }
    }

    /// As the history and progress show it.
    pub fn describe(&self) -> String {
        match self {
            Self::Tmp => "/tmp".into(),
            Self::Nsswitch => "/etc/nsswitch.conf".into(),
            Self::CaCertificates { .. } => CA_FILE.into(),
            Self::Zoneinfo { .. } => ZONEINFO_DIR.into(),
        }
    }
}
