//! The engine's typed model of a container: Docker's `Config`, `HostConfig` and
//! `NetworkingConfig` as the API sends them (field names as in the Docker Engine API swagger),
//! the container's resolved mounts ([`MountPoint`]) and its [`Status`].
//!
//! # Round trips
//! Docker clients send many fields berth does not use (yet), and `docker inspect` must echo
//! them: every struct keeps the fields it does not know in `extra` (`#[serde(flatten)]`).
//! The fields it knows are [`Field`]s, which tell a field that was absent from one that was
//! `null`: each is echoed as it came (Docker's Go structs show every field; berth shows what
//! the client sent plus the defaults `inspect` fills in).
//!
//! # Errors
//! [`decode`] names the field at fault (`HostConfig.Memory: invalid type: string "64m",
//! expected i64`) as a 400: a body berth cannot take is refused, not half-read.
use crate::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod config;
mod host_config;
mod mounts;
mod status;
pub(crate) mod unsupported;

pub(crate) use config::*;
pub(crate) use host_config::*;
pub(crate) use mounts::*;
pub(crate) use status::*;

/// A field of a Docker object as it came: absent, `null`, or a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Field<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

impl<T> Field<T> {
    pub(crate) fn get(&self) -> Option<&T> {
        match self {
            Field::Set(v) => Some(v),
            _ => None,
        }
    }
    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }
    /// Absent or null.
    pub(crate) fn is_none(&self) -> bool {
        !matches!(self, Field::Set(_))
    }
}

impl<T: Copy + Default> Field<T> {
    /// The value, or the type's zero (what Docker's Go structs hold for a missing field).
    pub(crate) fn val(&self) -> T {
        self.get().copied().unwrap_or_default()
    }
}

impl Field<String> {
    pub(crate) fn str(&self) -> &str {
        self.get().map(String::as_str).unwrap_or("")
    }
}

impl Field<StrList> {
    pub(crate) fn list(&self) -> &[String] {
        self.get().map(|l| l.0.as_slice()).unwrap_or(&[])
    }
}

impl<T> Field<Vec<T>> {
    pub(crate) fn items(&self) -> &[T] {
        self.get().map(Vec::as_slice).unwrap_or(&[])
    }
}

impl Field<Vec<String>> {
    pub(crate) fn list(&self) -> &[String] {
        self.items()
    }
}

impl Field<StrMap> {
    /// The map (empty when absent or null).
    pub(crate) fn map(&self) -> &std::collections::BTreeMap<String, String> {
        static EMPTY: std::collections::BTreeMap<String, String> =
            std::collections::BTreeMap::new();
        self.get().map(|m| &m.0).unwrap_or(&EMPTY)
    }
}

impl Field<KeySet> {
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.get()
            .into_iter()
            .flat_map(|k| k.0.keys().map(String::as_str))
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Field::Set(v) => v.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map_or(Field::Null, Field::Set))
    }
}

/// A list of strings that may also come as one string (Docker's `StrSlice`: `"Cmd": "true"`;
/// berth took a single string for its other string lists too). Serialised as a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct StrList(pub Vec<String>);

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(d) {
            Ok(OneOrMany::One(s)) => Ok(StrList(vec![s])),
            Ok(OneOrMany::Many(v)) => Ok(StrList(v)),
            Err(_) => Err(serde::de::Error::custom(
                "expected a string or a list of strings",
            )),
        }
    }
}

impl From<Vec<String>> for StrList {
    fn from(v: Vec<String>) -> Self {
        StrList(v)
    }
}

/// A map of strings (labels, sysctls, log options, tmpfs options): string values; a `null` value is taken as "" (as Go's decoder does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct StrMap(pub std::collections::BTreeMap<String, String>);

impl<'de> Deserialize<'de> for StrMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let m = std::collections::BTreeMap::<String, Option<String>>::deserialize(d)?;
        Ok(StrMap(
            m.into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
        ))
    }
}

/// Docker's `map[string]struct{}` (`ExposedPorts`, `Volumes`): keys whose values are empty
/// objects (`{"80/tcp": {}}`); a value that is not an object (or null) is refused, as Go's
/// decoder does. Echoed with `{}` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeySet(pub std::collections::BTreeMap<String, Empty>);

/// An empty object (`struct{}`): any object is taken (Go ignores unknown fields), `null` too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Empty;

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Empty;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an empty object")
            }
            fn visit_unit<E>(self) -> std::result::Result<Empty, E> {
                Ok(Empty)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Empty, A::Error> {
                while m
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Empty)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for KeySet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(KeySet(
            std::collections::BTreeMap::<String, Empty>::deserialize(d)?,
        ))
    }
}

impl Serialize for KeySet {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl KeySet {
    pub(crate) fn from_keys<'a>(keys: impl Iterator<Item = &'a String>) -> KeySet {
        KeySet(keys.map(|k| (k.clone(), Empty)).collect())
    }
}

/// An object's key, borrowed from the input when it can be (a create body's are).
pub(crate) struct Key<'a>(pub std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Decode a Docker object, naming the field at fault in the 400: `what` is its place in the
/// request ("HostConfig", "" for the top level).
/// (Read without path tracking first: only a bad one is read again, for the field's name.)
pub(crate) fn decode<'de, T: Deserialize<'de>>(what: &str, v: &'de serde_json::Value) -> Result<T> {
    if let Ok(t) = T::deserialize(v) {
        return Ok(t);
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let field = match (what.is_empty(), path.as_str()) {
            (true, ".") => "the body".to_string(),
            (false, ".") => what.to_string(),
            (true, p) => p.to_string(),
            (false, p) => format!("{what}.{p}"),
        };
        Error::BadParameter(format!("invalid {field}: {}", e.into_inner()))
    })
}

/// Declares a Docker object: each field is a [`Field`] under its exact Docker name, and the
/// fields not declared are kept in `extra` (echoed back by inspect). Decoded by a visitor of
/// its own rather than serde's `flatten` (which buffers the whole object first: a create
/// body was read three times over).
macro_rules! docker_object {
    ($(#[$m:meta])* pub(crate) struct $name:ident {
        $($(#[$fm:meta])* $json:literal $field:ident: $ty:ty,)*
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
        pub(crate) struct $name {
            $($(#[$fm])*
            #[serde(rename = $json, skip_serializing_if = "crate::model::Field::is_absent")]
            pub $field: crate::model::Field<$ty>,)*
            /// The fields berth does not use, as they came.
            #[serde(flatten)]
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                struct Visitor;
                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> std::result::Result<$name, A::Error> {
                        let mut out = $name::default();
                        while let Some(k) = map.next_key::<crate::model::Key>()? {
                            out.take_field(&k.0, &mut map)?;
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(Visitor)
            }
        }

        impl $name {
            /// Reads the value of field `k` (its key just read from `map`) into the object.
            #[allow(dead_code)]
            pub(crate) fn take_field<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                k: &str,
                map: &mut A,
            ) -> std::result::Result<(), A::Error> {
                match k {
                    $($json => self.$field = map.next_value()?,)*
                    _ => {
                        let v: serde_json::Value = map.next_value()?;
                        self.extra.insert(k.to_string(), v);
                    }
                }
                Ok(())
            }
        }
    };
}
pub(crate) use docker_object;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    docker_object! {
        pub(crate) struct T {
            "A" a: i64,
            "B" b: StrList,
        }
    }

    #[test]
    fn fields_round_trip_absent_null_and_unknown() {
        for v in [
            json!({}),
            json!({"A": null}),
            json!({"A": 3, "B": ["x"], "Other": {"k": [1, null]}, "N": null}),
        ] {
            let t: T = decode("", &v).unwrap();
            assert_eq!(serde_json::to_value(&t).unwrap(), v);
        }
        let t: T = decode("", &json!({"B": "one"})).unwrap();
        assert_eq!(t.b.list(), ["one"]);
        assert_eq!(t.a.val(), 0);
    }

    #[test]
    fn decode_names_the_field() {
        let e = decode::<T>("HostConfig", &json!({"A": "64m"})).unwrap_err();
        assert_eq!(e.status_code(), 400);
        assert!(e.to_string().contains("HostConfig.A"), "{e}");
        let e = decode::<T>("", &json!({"B": [1]})).unwrap_err();
        assert!(e.to_string().contains("invalid B"), "{e}");
        let e = decode::<T>("HostConfig", &json!([1])).unwrap_err();
        assert!(e.to_string().starts_with("invalid HostConfig:"), "{e}");
    }

    #[test]
    fn labels_take_null_as_empty() {
        let l: StrMap = serde_json::from_value(json!({"a": "b", "c": null})).unwrap();
        assert_eq!(l.0["c"], "");
    }
}
