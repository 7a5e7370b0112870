//! Target platforms, the Nix systems they map to, and the build args a
//! Dockerfile gets for them (`TARGETPLATFORM`, `TARGETARCH`, …).

use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

/// The platforms we can build, with their Nix system names.
const SUPPORTED: [(&str, &str); 7] = [
    ("linux/amd64", "x86_64-linux"),
    ("linux/arm64", "aarch64-linux"),
    ("linux/arm/v7", "armv7l-linux"),
    ("linux/386", "i686-linux"),
    ("linux/riscv64", "riscv64-linux"),
    ("linux/ppc64le", "powerpc64le-linux"),
    ("linux/s390x", "s390x-linux"),
];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`--platform`: {0:?} is not supported")]
pub struct UnsupportedPlatform(pub String);

impl UnsupportedPlatform {
    pub fn hint(&self) -> String {
        let list: Vec<&str> = SUPPORTED.iter().map(|(p, _)| *p).collect();
        format!("write OS/ARCH[/VARIANT]: {}", list.join(", "))
    }
}

impl Platform {
    /// Parses `os/arch[/variant]` as `docker build --platform` takes it:
    /// `arm64/v8` is `arm64`, `arm` is `arm/v7`, `x86_64` is `amd64`,
    /// `aarch64` is `arm64`, `i386` is `386`.
    pub fn parse(s: &str) -> Result<Self, UnsupportedPlatform> {
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, ""),
            [os, arch, variant] => (*os, *arch, *variant),
            _ => return Err(UnsupportedPlatform(s.to_owned())),
        };
        let (arch, variant) = match (arch, variant) {
            ("x86_64" | "x86-64", v) => ("amd64", v),
            ("aarch64" | "arm64", "" | "v8") => ("arm64", ""),
            ("i386" | "i686", v) => ("386", v),
            ("arm" | "armhf", "") => ("arm", "v7"),
            (a, v) => (a, v),
        };
        let platform = Self {
            os: os.to_owned(),
            architecture: arch.to_owned(),
            variant: variant.to_owned(),
        };
        platform
            .nix_system()
            .map(|_| platform)
            .ok_or_else(|| UnsupportedPlatform(s.to_owned()))
    }

    /// `linux/amd64` → `x86_64-linux`, `linux/arm64` → `aarch64-linux`, …
    pub fn nix_system(&self) -> Option<&'static str> {
        let id = self.to_string();
        SUPPORTED.iter().find(|(p, _)| *p == id).map(|(_, s)| *s)
    }

    /// The automatic build args of a Dockerfile for building `self` on
    /// `build`: `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`
    /// and the same for `BUILD…`.
    pub fn build_args(&self, build: &Platform) -> BTreeMap<String, String> {
        let mut args = BTreeMap::new();
        for (prefix, p) in [("TARGET", self), ("BUILD", build)] {
            args.insert(format!("{prefix}PLATFORM"), p.to_string());
            args.insert(format!("{prefix}OS"), p.os.clone());
            args.insert(format!("{prefix}ARCH"), p.architecture.clone());
            args.insert(format!("{prefix}VARIANT"), p.variant.clone());
        }
        args
    }
}

/// `os/arch[/variant]`: the platform's ID in BuildKit's results.
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
        let system = |p: &str| Platform::parse(p).unwrap().nix_system().unwrap();
        assert_eq!(system("linux/amd64"), "x86_64-linux");
        assert_eq!(system("linux/arm64/v8"), "aarch64-linux");
        assert_eq!(system("linux/arm/v7"), "armv7l-linux");
        assert_eq!(system("linux/arm"), "armv7l-linux");
        assert_eq!(system("linux/386"), "i686-linux");
        assert_eq!(system("linux/riscv64"), "riscv64-linux");
        assert_eq!(system("linux/ppc64le"), "powerpc64le-linux");
        assert_eq!(system("linux/s390x"), "s390x-linux");
        assert_eq!(system("Linux/x86_64"), "x86_64-linux");
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().to_string(),
            "linux/arm64"
        );
        let err = Platform::parse("linux/mips64").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`--platform`: \"linux/mips64\" is not supported"
        );
        assert_eq!(
            err.hint(),
            "write OS/ARCH[/VARIANT]: linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/riscv64, linux/ppc64le, linux/s390x"
        );
        assert!(Platform::parse("amd64").is_err());
        assert!(Platform::parse("linux/arm/v6").is_err());
    }

    #[test]
    fn build_args_like_a_dockerfile() {
        let target = Platform::parse("linux/arm/v7").unwrap();
        let build = Platform::parse("linux/amd64").unwrap();
        let a = target.build_args(&build);
        assert_eq!(a["TARGETPLATFORM"], "linux/arm/v7");
        assert_eq!(a["TARGETARCH"], "arm");
        assert_eq!(a["TARGETVARIANT"], "v7");
        assert_eq!(a["BUILDPLATFORM"], "linux/amd64");
        assert_eq!(a["BUILDVARIANT"], "");
    }
}
