//! Target platforms and the Nix systems they map to.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

/// The platforms we can build, with their Nix system names.
const SUPPORTED: [(&str, &str); 2] = [
    ("linux/amd64", "x86_64-linux"),
    ("linux/arm64", "aarch64-linux"),
];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`--platform`: {0:?} is not supported")]
pub struct UnsupportedPlatform(pub String);

impl UnsupportedPlatform {
    pub fn hint(&self) -> String {
        let list: Vec<&str> = SUPPORTED.iter().map(|(p, _)| *p).collect();
        format!("write OS/ARCH: {}", list.join(", "))
    }
}

impl Platform {
    /// Parses `os/arch[/variant]`; `arm64/v8` is the same as `arm64`.
    pub fn parse(s: &str) -> Result<Self, UnsupportedPlatform> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let p = match parts.as_slice() {
            [os, arch] => (os, arch, ""),
            [os, arch, variant] => (os, arch, *variant),
            _ => return Err(UnsupportedPlatform(s.to_owned())),
        };
        let variant = if *p.1 == "arm64" && p.2 == "v8" {
            ""
        } else {
            p.2
        };
        let platform = Self {
            os: p.0.to_string(),
            architecture: p.1.to_string(),
            variant: variant.to_owned(),
        };
        platform
            .nix_system()
            .map(|_| platform)
            .ok_or_else(|| UnsupportedPlatform(s.to_owned()))
    }

    /// `linux/amd64` → `x86_64-linux`, `linux/arm64` → `aarch64-linux`.
    pub fn nix_system(&self) -> Option<&'static str> {
        let id = self.to_string();
        SUPPORTED.iter().find(|(p, _)| *p == id).map(|(_, s)| *s)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_nix_systems() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().nix_system(),
            Some("x86_64-linux")
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().nix_system(),
            Some("aarch64-linux")
        );
        let err = Platform::parse("linux/s390x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`--platform`: \"linux/s390x\" is not supported"
        );
        assert_eq!(err.hint(), "write OS/ARCH: linux/amd64, linux/arm64");
        assert!(Platform::parse("amd64").is_err());
    }
}
