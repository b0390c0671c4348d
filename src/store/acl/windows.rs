//! Windows twin of the ACL repair: the effect of `takeown /A /R`,
//! `icacls /reset /T` and `icacls /inheritance:r /grant:r` that the old batch
//! file ran, without starting a process per step.
//!
//! - Owner BUILTIN\Administrators on the store and everything in it.
//! - The root's DACL protected from inheritance, with exactly three entries
//!   inherited by every child: Administrators and SYSTEM full control, Users
//!   read and execute. Written with windows-acl, whose writes always protect
//!   the DACL, which is what the root needs.
//! - Below the root, no explicit entries and no protection, so children only
//!   inherit. windows-acl cannot write an unprotected DACL nor set an owner,
//!   so these two writes go through `SetNamedSecurityInfoW` directly.
//!
//! Every object is read first and written only where it differs, so a second
//! run on a repaired store only reads security descriptors. Links and
//! junctions are neither followed nor changed. Well-known SIDs keep it
//! independent of the Windows display language.

use std::ffi::c_void;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use windows_acl::acl::{ACL as FileAcl, AceType};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_SUCCESS, HANDLE, LUID, LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    GetNamedSecurityInfoW, SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACE_HEADER, ACL, ACL_REVISION, AdjustTokenPrivileges, DACL_SECURITY_INFORMATION, EqualSid,
    GetAce, GetSecurityDescriptorControl, INHERITED_ACE, InitializeAcl, LookupPrivilegeValueW,
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SE_DACL_PROTECTED,
    SE_PRIVILEGE_ENABLED, TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES,
    UNPROTECTED_DACL_SECURITY_INFORMATION,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::{AclError, Repaired};
use crate::store::dir::StoreDir;
use crate::store::ownership;
use crate::store::path::StorePath;
use crate::store::walk::Found;

const ADMINISTRATORS: &str = "S-1-5-32-544";
const SYSTEM: &str = "S-1-5-18";
const USERS: &str = "S-1-5-32-545";
/// FILE_ALL_ACCESS, what icacls calls F.
const FULL_CONTROL: u32 = 0x001F_01FF;
/// FILE_GENERIC_READ | FILE_GENERIC_EXECUTE, what icacls calls RX.
const READ_AND_EXECUTE: u32 = 0x0012_00A9;
/// OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE, what icacls calls (OI)(CI).
const INHERIT_TO_ALL: u8 = 0x01 | 0x02;

/// [`repair`]; the walk here is path-based and lists nothing for the
/// inventory, which walks the store itself.
pub(crate) fn repair_listing(store: &StoreDir) -> Result<(Repaired, Option<Vec<Found>>), AclError> {
    repair(store).map(|repaired| (repaired, None))
}

/// Repairs the store and everything below it; returns what it changed.
/// Path-based: a reparse point below the root is recognised by its own
/// attributes and neither followed nor changed, and the store's folders
/// belong to Administrators, so no one else can swap one in during the walk.
pub(crate) fn repair(store: &StoreDir) -> Result<Repaired, AclError> {
    let root = store.path();
    // An administrator's token holds these privileges disabled; they let it
    // take ownership of files whose DACL shuts it out.
    enable_privilege("SeTakeOwnershipPrivilege", root)?;
    enable_privilege("SeRestorePrivilege", root)?;
    let administrators = Sid::parse(ADMINISTRATORS, root)?;
    let wanted_root = [
        (Sid::parse(ADMINISTRATORS, root)?, FULL_CONTROL),
        (Sid::parse(SYSTEM, root)?, FULL_CONTROL),
        (Sid::parse(USERS, root)?, READ_AND_EXECUTE),
    ];

    let mut repaired = Repaired::default();
    let mut pending: Vec<(PathBuf, Option<StorePath>)> = vec![(root.to_path_buf(), None)];
    while let Some((path, rel)) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| fail(&path, e.to_string()))?;
        let is_root = rel.is_none();
        if is_reparse_point(&meta) {
            if is_root {
                return Err(fail(&path, "the store root is a link or junction".into()));
            }
            continue;
        }
        let wide = wide(&path);
        let found = match Descriptor::read(&wide) {
            Err(ERROR_ACCESS_DENIED) => {
                // Taking ownership gives the right to read and rewrite the DACL.
                set_owner(&wide, &administrators, &path)?;
                Descriptor::read(&wide).map_err(|code| fail(&path, os_error(code)))?
            }
            other => other.map_err(|code| fail(&path, os_error(code)))?,
        };
        let mut changed = false;
        // An entry the elevated account running the sync owns is an
        // administrator's already; only another owner is replaced.
        let foreign_owner =
            !found.owner_is(&administrators) && !ownership::is_admin_account(found.owner);
        let reset = !is_root && (found.protected || found.has_explicit_entries());
        // Read before anything changes: whether someone else could write it.
        let writable_by_others = (foreign_owner || reset) && ownership::check_path(&path).is_err();
        if foreign_owner {
            set_owner(&wide, &administrators, &path)?;
            changed = true;
        }
        if is_root {
            if !found.protected || !found.has_exactly(&wanted_root) {
                write_root_dacl(&path, &wanted_root)?;
            }
        } else if reset {
            reset_to_inherited(&wide, &path)?;
            changed = true;
        }
        // What counts for the sync is whether someone else could have
        // written the entry, not that its descriptor was rewritten.
        if changed
            && writable_by_others
            && let Some(rel) = &rel
        {
            repaired.paths.push(rel.clone());
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| fail(&path, e.to_string()))? {
                let entry = entry.map_err(|e| fail(&path, e.to_string()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let child = StorePath::child(rel.as_ref(), &name)
                    .ok_or_else(|| fail(&entry.path(), format!("{name:?} is not a file name")))?;
                pending.push((entry.path(), Some(child)));
            }
        }
    }
    repaired.paths.sort();
    Ok(repaired)
}

fn is_reparse_point(meta: &std::fs::Metadata) -> bool {
    use std::os::windows::fs::MetadataExt;
    const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0400;
    meta.file_type().is_symlink() || meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0
}

/// Gives the root exactly the wanted entries, inheritable, and protects it.
fn write_root_dacl(root: &Path, wanted: &[(Sid, u32)]) -> Result<(), AclError> {
    let text = root
        .to_str()
        .ok_or_else(|| fail(root, "path is not valid Unicode".into()))?;
    let mut acl =
        FileAcl::from_file_path(text, false).map_err(|code| fail(root, os_error(code)))?;
    let entries = acl.all().map_err(|code| fail(root, os_error(code)))?;
    for entry in entries {
        let Some(sid) = entry.sid else { continue };
        let keep = entry.entry_type == AceType::AccessAllow
            && entry.flags == INHERIT_TO_ALL
            && wanted
                .iter()
                .any(|(want, mask)| want.equals(sid.as_ptr() as PSID) && *mask == entry.mask);
        if !keep {
            acl.remove_entry(
                sid.as_ptr() as *mut _,
                Some(entry.entry_type),
                Some(entry.flags),
            )
            .map_err(|code| fail(root, os_error(code)))?;
        }
    }
    // `allow` replaces an explicit entry of the same SID, and like every
    // windows-acl write it protects the DACL from inheritance.
    for (sid, mask) in wanted {
        acl.allow(sid.as_ptr() as *mut _, true, *mask)
            .map_err(|code| fail(root, os_error(code)))?;
    }
    Ok(())
}

/// Drops every explicit entry and the protection: the object only inherits.
fn reset_to_inherited(wide: &[u16], path: &Path) -> Result<(), AclError> {
    // An empty ACL, not a null one: a null DACL would grant everyone everything.
    let mut empty = ACL {
        AclRevision: 0,
        Sbz1: 0,
        AclSize: 0,
        AceCount: 0,
        Sbz2: 0,
    };
    // SAFETY: `empty` is a writable ACL header of the size passed.
    if unsafe { InitializeAcl(&mut empty, size_of::<ACL>() as u32, ACL_REVISION) } == 0 {
        return Err(fail(path, std::io::Error::last_os_error().to_string()));
    }
    // SAFETY: `wide` is NUL-terminated; the ACL outlives the call.
    let code = unsafe {
        SetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | UNPROTECTED_DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            &empty,
            null(),
        )
    };
    check(code, path)
}

fn set_owner(wide: &[u16], owner: &Sid, path: &Path) -> Result<(), AclError> {
    // SAFETY: `wide` is NUL-terminated; the SID outlives the call.
    let code = unsafe {
        SetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION,
            owner.as_ptr(),
            null_mut(),
            null(),
            null(),
        )
    };
    check(code, path)
}

/// The owner and DACL of one object, as `GetNamedSecurityInfoW` returned them.
struct Descriptor {
    buffer: PSECURITY_DESCRIPTOR,
    owner: PSID,
    dacl: *mut ACL,
    protected: bool,
}

impl Descriptor {
    fn read(wide: &[u16]) -> Result<Self, u32> {
        let mut owner: PSID = null_mut();
        let mut dacl: *mut ACL = null_mut();
        let mut buffer: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `wide` is NUL-terminated; every out pointer is valid.
        let code = unsafe {
            GetNamedSecurityInfoW(
                wide.as_ptr(),
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                &mut owner,
                null_mut(),
                &mut dacl,
                null_mut(),
                &mut buffer,
            )
        };
        if code != ERROR_SUCCESS {
            return Err(code);
        }
        let mut control = 0u16;
        let mut revision = 0u32;
        // SAFETY: `buffer` is the descriptor just returned.
        unsafe { GetSecurityDescriptorControl(buffer, &mut control, &mut revision) };
        Ok(Self {
            buffer,
            owner,
            dacl,
            protected: control & SE_DACL_PROTECTED != 0,
        })
    }

    fn owner_is(&self, sid: &Sid) -> bool {
        !self.owner.is_null() && sid.equals(self.owner)
    }

    /// Type, flags, mask and SID of each entry of the DACL.
    fn entries(&self) -> Vec<(u8, u8, u32, PSID)> {
        let mut entries = Vec::new();
        if self.dacl.is_null() {
            return entries;
        }
        // SAFETY: `dacl` points into `buffer`, alive as long as `self`.
        let count = unsafe { (*self.dacl).AceCount };
        for index in 0..u32::from(count) {
            let mut ace: *mut c_void = null_mut();
            // SAFETY: index is below AceCount; every ACE begins with a header
            // and, for the allow and deny types, a mask followed by the SID.
            unsafe {
                if GetAce(self.dacl, index, &mut ace) == 0 {
                    continue;
                }
                let header = &*(ace as *const ACE_HEADER);
                let mask = *(ace.cast::<u8>().add(size_of::<ACE_HEADER>()) as *const u32);
                let sid = ace.cast::<u8>().add(size_of::<ACE_HEADER>() + 4) as PSID;
                entries.push((header.AceType, header.AceFlags, mask, sid));
            }
        }
        entries
    }

    fn has_explicit_entries(&self) -> bool {
        self.entries()
            .iter()
            .any(|(_, flags, _, _)| u32::from(*flags) & INHERITED_ACE == 0)
    }

    fn has_exactly(&self, wanted: &[(Sid, u32)]) -> bool {
        const ACCESS_ALLOWED: u8 = 0;
        let entries = self.entries();
        entries.len() == wanted.len()
            && wanted.iter().all(|(sid, mask)| {
                entries.iter().any(|(kind, flags, found_mask, found_sid)| {
                    *kind == ACCESS_ALLOWED
                        && *flags == INHERIT_TO_ALL
                        && found_mask == mask
                        && sid.equals(*found_sid)
                })
            })
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: the buffer came from GetNamedSecurityInfoW, freed once.
        unsafe { LocalFree(self.buffer) };
    }
}

/// A SID in its binary form.
struct Sid(Vec<u8>);

impl Sid {
    fn parse(text: &str, path: &Path) -> Result<Self, AclError> {
        windows_acl::helper::string_to_sid(text)
            .map(Self)
            .map_err(|code| fail(path, format!("SID {text}: {}", os_error(code))))
    }

    fn as_ptr(&self) -> PSID {
        self.0.as_ptr() as PSID
    }

    fn equals(&self, other: PSID) -> bool {
        // SAFETY: both point at valid SIDs.
        unsafe { EqualSid(self.as_ptr(), other) != 0 }
    }
}

fn enable_privilege(name: &str, path: &Path) -> Result<(), AclError> {
    let wide_name: Vec<u16> = name.encode_utf16().chain([0]).collect();
    let mut token: HANDLE = null_mut();
    // SAFETY: plain Win32 calls with valid out pointers; the token is closed.
    unsafe {
        if OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES, &mut token) == 0 {
            return Err(fail(
                path,
                format!("{name}: {}", std::io::Error::last_os_error()),
            ));
        }
        let mut luid = LUID {
            LowPart: 0,
            HighPart: 0,
        };
        let found = LookupPrivilegeValueW(null(), wide_name.as_ptr(), &mut luid);
        let privileges = TOKEN_PRIVILEGES {
            PrivilegeCount: 1,
            Privileges: [windows_sys::Win32::Security::LUID_AND_ATTRIBUTES {
                Luid: luid,
                Attributes: SE_PRIVILEGE_ENABLED,
            }],
        };
        let adjusted = found != 0
            && AdjustTokenPrivileges(token, 0, &privileges, 0, null_mut(), null_mut()) != 0;
        let error = std::io::Error::last_os_error();
        CloseHandle(token);
        if !adjusted {
            return Err(fail(path, format!("{name}: {error}")));
        }
    }
    Ok(())
}

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain([0]).collect()
}

fn check(code: u32, path: &Path) -> Result<(), AclError> {
    if code == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(fail(path, os_error(code)))
    }
}

fn os_error(code: u32) -> String {
    std::io::Error::from_raw_os_error(code as i32).to_string()
}

fn fail(path: &Path, why: String) -> AclError {
    AclError {
        path: path.to_path_buf(),
        why,
    }
}
