//! A container's status, as Docker's `ContainerState.Status` names it.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub(crate) const ALL: [Status; 7] = [
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Restarting,
        Status::Removing,
        Status::Exited,
        Status::Dead,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Docker's `State.Running`: a process exists (paused included).
    pub(crate) fn has_process(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }

    /// Running, paused or between the runs of a restart policy.
    pub(crate) fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_as_docker_names_them() {
        for st in Status::ALL {
            let j = serde_json::to_value(st).unwrap();
            assert_eq!(j, serde_json::json!(st.as_str()));
            assert_eq!(serde_json::from_value::<Status>(j).unwrap(), st);
            assert_eq!(st.as_str().parse::<Status>(), Ok(st));
            assert_eq!(st.to_string(), st.as_str());
        }
        assert!(serde_json::from_value::<Status>(serde_json::json!("Running")).is_err());
        assert!("up".parse::<Status>().is_err());
    }

    #[test]
    fn predicates() {
        use Status::*;
        let active: Vec<Status> = Status::ALL.into_iter().filter(|s| s.is_active()).collect();
        assert_eq!(active, [Running, Paused, Restarting]);
        let procs: Vec<Status> = Status::ALL
            .into_iter()
            .filter(|s| s.has_process())
            .collect();
        assert_eq!(procs, [Running, Paused]);
    }
}
