//! The words of a task: its action, status and result, typed here and
//! written as Drydock's words only at the SQLite and wire edges.

/// A task's action: Drydock's words, stored and served as [`TaskAction::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskAction {
    /// Validate a design.
    ValidateDesign,
    /// Validate a design (Drydock's site check).
    VerifySite,
    /// Validate a design and plan it against the applied state, not applied.
    PrepareSite,
    /// Reads each selected node's power state through its BMC.
    VerifyNodes,
    /// Sets PXE for the next boot of each selected node, then cycles it.
    PrepareNodes,
    /// A new deployment (new action ids and keys) for each selected node,
    /// then PXE once and a cycle.
    DeployNodes,
    /// Like `deploy_nodes`.
    RedeployServer,
    /// Revokes the selected nodes' deployments (their keys are refused),
    /// then powers them off.
    DestroyNodes,
    /// Needs a Kubernetes API client; not supported.
    RelabelNodes,
    /// Needs BIOS and firmware settings through the BMC; not supported.
    ConfigureHardware,
}

impl TaskAction {
    /// Every action `POST /tasks` accepts, in Drydock's order.
    pub const ALL: [TaskAction; 10] = [
        TaskAction::ValidateDesign,
        TaskAction::VerifySite,
        TaskAction::PrepareSite,
        TaskAction::VerifyNodes,
        TaskAction::PrepareNodes,
        TaskAction::DeployNodes,
        TaskAction::RedeployServer,
        TaskAction::DestroyNodes,
        TaskAction::RelabelNodes,
        TaskAction::ConfigureHardware,
    ];

    /// The word stored and served.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskAction::ValidateDesign => "validate_design",
            TaskAction::VerifySite => "verify_site",
            TaskAction::PrepareSite => "prepare_site",
            TaskAction::VerifyNodes => "verify_nodes",
            TaskAction::PrepareNodes => "prepare_nodes",
            TaskAction::DeployNodes => "deploy_nodes",
            TaskAction::RedeployServer => "redeploy_server",
            TaskAction::DestroyNodes => "destroy_nodes",
            TaskAction::RelabelNodes => "relabel_nodes",
            TaskAction::ConfigureHardware => "configure_hardware",
        }
    }

    /// Drydock's node actions slipway carries out with its own deployment
    /// bookkeeping: `deploy_nodes` and `redeploy_server` start a new
    /// deployment for each selected node; `destroy_nodes` revokes them.
    pub fn is_deployment(self) -> bool {
        matches!(
            self,
            TaskAction::DeployNodes | TaskAction::RedeployServer | TaskAction::DestroyNodes
        )
    }

    /// The power operations the action runs on each selected node, in order
    /// (docs/power.md, "What each task action does to power"); empty: none.
    pub fn power_ops(self) -> &'static [crate::power::PowerOp] {
        use crate::power::PowerOp;
        match self {
            TaskAction::VerifyNodes => &[PowerOp::Status],
            TaskAction::PrepareNodes | TaskAction::DeployNodes | TaskAction::RedeployServer => {
                &crate::services::power::PXE_AND_CYCLE
            }
            TaskAction::DestroyNodes => &[PowerOp::Off],
            _ => &[],
        }
    }

    /// What a node action slipway cannot carry out would need (`None`: it
    /// can carry it out).
    pub fn unsupported(self) -> Option<&'static str> {
        match self {
            TaskAction::RelabelNodes => Some("a Kubernetes API client to relabel nodes"),
            TaskAction::ConfigureHardware => {
                Some("BIOS and firmware settings through the BMC (its BMC control covers power and boot device only)")
            }
            _ => None,
        }
    }
}

impl std::str::FromStr for TaskAction {
    type Err = ();

    fn from_str(word: &str) -> Result<Self, ()> {
        TaskAction::ALL
            .into_iter()
            .find(|a| a.as_str() == word)
            .ok_or(())
    }
}

impl std::fmt::Display for TaskAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every action name accepted by `POST /tasks` (the spec's enum).
pub const ACTIONS: [&str; 10] = [
    TaskAction::ALL[0].as_str(),
    TaskAction::ALL[1].as_str(),
    TaskAction::ALL[2].as_str(),
    TaskAction::ALL[3].as_str(),
    TaskAction::ALL[4].as_str(),
    TaskAction::ALL[5].as_str(),
    TaskAction::ALL[6].as_str(),
    TaskAction::ALL[7].as_str(),
    TaskAction::ALL[8].as_str(),
    TaskAction::ALL[9].as_str(),
];

/// Where a task is in its life: `queued` -> `running` -> `complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Stored, not started.
    Queued,
    /// Being carried out.
    Running,
    /// Ended; its result says how.
    Complete,
}

impl TaskStatus {
    /// The word stored and served.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Complete => "complete",
        }
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = ();

    fn from_str(word: &str) -> Result<Self, ()> {
        [
            TaskStatus::Queued,
            TaskStatus::Running,
            TaskStatus::Complete,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
        .ok_or(())
    }
}

/// How a task ended (`incomplete` until it does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskResult {
    /// Not ended yet.
    Incomplete,
    /// Done for everything asked.
    Success,
    /// Done for some nodes, failed for others.
    PartialSuccess,
    /// Not done.
    Failure,
}

impl TaskResult {
    /// The word stored and served.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskResult::Incomplete => "incomplete",
            TaskResult::Success => "success",
            TaskResult::PartialSuccess => "partial_success",
            TaskResult::Failure => "failure",
        }
    }
}

impl std::str::FromStr for TaskResult {
    type Err = ();

    fn from_str(word: &str) -> Result<Self, ()> {
        [
            TaskResult::Incomplete,
            TaskResult::Success,
            TaskResult::PartialSuccess,
            TaskResult::Failure,
        ]
        .into_iter()
        .find(|r| r.as_str() == word)
        .ok_or(())
    }
}
