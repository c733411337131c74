//! The five workspace roles and the permission matrix of the HTTP contract.

use serde::{Deserialize, Serialize};

/// Workspace roles, ordered from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Member,
    Approver,
    Admin,
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "viewer" => Role::Viewer,
            "member" => Role::Member,
            "approver" => Role::Approver,
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Roles whose holders may be asked to approve (the author is excluded elsewhere).
    pub fn can_approve(self) -> bool {
        allows(self, Permission::Decide)
    }
}

/// What a caller wants to do, for the role half of the permission matrix.
/// Ownership rules (author, assignee, step holder) are checked by the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    ReadAuditDetail,
    CreateChange,
    Decide,
    ExecuteAny,
    CancelAny,
    ManageWorkspace,
    VerifyAudit,
}

impl Permission {
    /// The least role that holds this permission on its own.
    pub fn min_role(self) -> Role {
        match self {
            Permission::Read => Role::Viewer,
            Permission::ReadAuditDetail | Permission::CreateChange => Role::Member,
            Permission::Decide => Role::Approver,
            Permission::ExecuteAny | Permission::CancelAny | Permission::ManageWorkspace | Permission::VerifyAudit => {
                Role::Admin
            }
        }
    }
}

pub fn allows(role: Role, p: Permission) -> bool {
    role >= p.min_role()
}

/// Whether `granter` may give `target` the role `new_role` (and take away `old_role`).
/// Admins manage everyone below owner; only an owner grants or removes `owner`.
pub fn may_assign(granter: Role, old_role: Option<Role>, new_role: Option<Role>) -> bool {
    if granter < Role::Admin {
        return false;
    }
    let touches_owner = old_role == Some(Role::Owner) || new_role == Some(Role::Owner);
    !touches_owner || granter == Role::Owner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_follows_the_contract() {
        assert!(allows(Role::Viewer, Permission::Read));
        assert!(!allows(Role::Viewer, Permission::CreateChange));
        assert!(!allows(Role::Viewer, Permission::ReadAuditDetail));
        assert!(allows(Role::Member, Permission::CreateChange));
        assert!(!allows(Role::Member, Permission::Decide));
        assert!(allows(Role::Approver, Permission::Decide));
        assert!(!allows(Role::Approver, Permission::ExecuteAny));
        assert!(allows(Role::Admin, Permission::VerifyAudit));
        assert!(!allows(Role::Approver, Permission::VerifyAudit));
    }

    #[test]
    fn only_owners_touch_owners() {
        assert!(may_assign(Role::Admin, None, Some(Role::Approver)));
        assert!(!may_assign(Role::Admin, None, Some(Role::Owner)));
        assert!(!may_assign(Role::Admin, Some(Role::Owner), Some(Role::Member)));
        assert!(!may_assign(Role::Admin, Some(Role::Owner), None));
        assert!(may_assign(Role::Owner, Some(Role::Member), Some(Role::Owner)));
        assert!(!may_assign(Role::Approver, None, Some(Role::Viewer)));
    }
}
