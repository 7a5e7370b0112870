//! BuildKit's error details (package `errdefs`) that a frontend reads.

/// The vertex a solve failed in. Sent as JSON (`errdefs.Vertex+json`) by
/// BuildKit versions that marshal details with typeurl's JSON, as protobuf
/// by later ones.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Vertex {
    #[prost(string, tag = "1")]
    pub digest: String,
}
