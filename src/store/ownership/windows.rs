//! Windows twin: the owner is Administrators, SYSTEM, TrustedInstaller or the
//! account the sync runs as (elevated, so an administrator itself), and no
//! entry of the DACL lets anyone else write, delete, or change the
//! permissions or the owner. Only the object itself is checked: Users may
//! create folders in `%ProgramData%`, which is why the object's own owner and
//! DACL decide, as the MSI sets them.

use std::ffi::c_void;
use std::fs::File;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{ERROR_SUCCESS, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    GetNamedSecurityInfoW, GetSecurityInfo, SDDL_REVISION_1, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    ACE_HEADER, ACL, DACL_SECURITY_INFORMATION, GetAce, OWNER_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES,
};
use windows_sys::Win32::Storage::FileSystem::CreateDirectoryW;

use super::NotAdminOnly;

/// The accounts that may own and write what the client trusts.
const ADMIN_SIDS: [&str; 3] = [
    "S-1-5-32-544",
    "S-1-5-18",
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
];
/// Whether `sid` is an administrators' account: a well-known one, or the
/// account this elevated process runs as.
fn is_admin(sid: &str) -> bool {
    static RUNNING_AS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ADMIN_SIDS.contains(&sid) || RUNNING_AS.get_or_init(token_user).as_deref() == Some(sid)
}

/// Whether the SID `sid` points at is an administrators' account, as
/// [`is_admin`] has it.
pub(crate) fn is_admin_account(sid: PSID) -> bool {
    is_admin(&sid_text(sid))
}

/// The SID of the account the process token belongs to.
fn token_user() -> Option<String> {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::{GetTokenInformation, TOKEN_QUERY, TOKEN_USER, TokenUser};
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
    let mut token: HANDLE = null_mut();
    // SAFETY: a pseudo-handle needing no closing; `token` is a valid out pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return None;
    }
    let mut buffer = vec![0u64; 64];
    let mut written = 0u32;
    // SAFETY: `token` is open with TOKEN_QUERY; the buffer is 512 bytes,
    // aligned for TOKEN_USER, and its size is passed.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenUser,
            buffer.as_mut_ptr().cast(),
            (buffer.len() * 8) as u32,
            &mut written,
        )
    };
    // SAFETY: `token` is an open handle owned here.
    unsafe { CloseHandle(token) };
    if ok == 0 {
        return None;
    }
    // SAFETY: on success the buffer starts with a TOKEN_USER whose SID
    // points into the buffer.
    let sid = unsafe { (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    Some(sid_text(sid))
}

/// Write data or append, write attributes and extended attributes, delete a
/// child, delete, change the DACL or the owner, and the generic write and all.
const WRITE_RIGHTS: u32 = 0x0002
    | 0x0004
    | 0x0010
    | 0x0040
    | 0x0100
    | 0x0001_0000
    | 0x0004_0000
    | 0x0008_0000
    | 0x4000_0000
    | 0x1000_0000;
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
const INHERIT_ONLY_ACE: u8 = 0x08;
/// Owner Administrators; protected DACL: SYSTEM and Administrators full
/// control, inherited by every child.
const PRIVATE_SDDL: &str = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";
/// The store root as the repair leaves it: the same, and Users read and
/// execute (WPKG runs from it).
const STORE_SDDL: &str = "O:BAD:P(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)(A;OICI;0x1200a9;;;BU)";

/// Checks the object `path` names.
pub(crate) fn check_path(path: &Path) -> Result<(), NotAdminOnly> {
    let wide = wide(path);
    let mut owner: PSID = null_mut();
    let mut dacl: *mut ACL = null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: `wide` is NUL-terminated; the out pointers are valid and the
    // descriptor is freed below.
    let code = unsafe {
        GetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            null_mut(),
            &mut dacl,
            null_mut(),
            &mut descriptor,
        )
    };
    judge(code, owner, dacl, descriptor, path)
}

/// Checks the object `file` is open on.
pub(crate) fn check_open(file: &File, path: &Path) -> Result<(), NotAdminOnly> {
    let mut owner: PSID = null_mut();
    let mut dacl: *mut ACL = null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: the handle is open for as long as `file` lives; the out
    // pointers are valid and the descriptor is freed below.
    let code = unsafe {
        GetSecurityInfo(
            file.as_raw_handle(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            null_mut(),
            &mut dacl,
            null_mut(),
            &mut descriptor,
        )
    };
    judge(code, owner, dacl, descriptor, path)
}

/// Checks only that an administrator owns the object `file` is open on:
/// files below the drive root inherit write access for every signed-in user.
pub(crate) fn check_open_owner(file: &File, path: &Path) -> Result<(), NotAdminOnly> {
    let mut owner: PSID = null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: the handle is open for as long as `file` lives; the out
    // pointers are valid and the descriptor is freed below.
    let code = unsafe {
        GetSecurityInfo(
            file.as_raw_handle(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION,
            &mut owner,
            null_mut(),
            null_mut(),
            null_mut(),
            &mut descriptor,
        )
    };
    owner_verdict(code, owner, descriptor, path)
}

fn owner_verdict(
    code: u32,
    owner: PSID,
    descriptor: PSECURITY_DESCRIPTOR,
    path: &Path,
) -> Result<(), NotAdminOnly> {
    if code != ERROR_SUCCESS {
        return Err(NotAdminOnly {
            path: path.to_path_buf(),
            why: format!(
                "cannot be checked: {}",
                std::io::Error::from_raw_os_error(code as i32)
            ),
        });
    }
    let owner = sid_text(owner);
    // SAFETY: allocated by GetSecurityInfo or GetNamedSecurityInfoW.
    unsafe { LocalFree(descriptor) };
    if is_admin(&owner) {
        Ok(())
    } else {
        Err(NotAdminOnly {
            path: path.to_path_buf(),
            why: format!("is owned by {owner}, not Administrators or SYSTEM"),
        })
    }
}

/// Opens the regular file `path` for reading; a link or junction is opened
/// as itself and refused.
pub(crate) fn open_regular_nofollow(path: &Path) -> std::io::Result<File> {
    use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
    const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0400;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(std::io::Error::other("is a link, which is not followed"));
    }
    if !meta.is_file() {
        return Err(std::io::Error::other("is not a regular file"));
    }
    Ok(file)
}

/// Creates the folder `path` owned by Administrators with a protected DACL
/// that only SYSTEM and Administrators appear in.
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    create_dir_with(path, PRIVATE_SDDL)
}

/// Creates the store root `path` owned by Administrators with the protected
/// DACL the repair gives it.
pub(crate) fn create_store_dir(path: &Path) -> std::io::Result<()> {
    create_dir_with(path, STORE_SDDL)
}

/// Gives the existing folder `path` owner Administrators and the protected
/// DACL of a private folder, or with `store`, of the store root.
pub(crate) fn protect_dir(path: &Path, store: bool) -> std::io::Result<()> {
    use windows_sys::Win32::Security::Authorization::SetNamedSecurityInfoW;
    use windows_sys::Win32::Security::{
        GetSecurityDescriptorDacl, GetSecurityDescriptorOwner, PROTECTED_DACL_SECURITY_INFORMATION,
    };
    let descriptor = Descriptor::from_sddl(if store { STORE_SDDL } else { PRIVATE_SDDL })?;
    let (mut owner, mut defaulted): (PSID, i32) = (null_mut(), 0);
    let (mut dacl, mut present): (*mut ACL, i32) = (null_mut(), 0);
    // SAFETY: the descriptor is valid and alive; the out pointers are valid.
    let ok = unsafe {
        GetSecurityDescriptorOwner(descriptor.0, &mut owner, &mut defaulted) != 0
            && GetSecurityDescriptorDacl(descriptor.0, &mut present, &mut dacl, &mut defaulted) != 0
    };
    if !ok {
        return Err(std::io::Error::last_os_error());
    }
    let wide = wide(path);
    // SAFETY: `wide` is NUL-terminated; owner and DACL point into the live
    // descriptor.
    let code = unsafe {
        SetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION
                | DACL_SECURITY_INFORMATION
                | PROTECTED_DACL_SECURITY_INFORMATION,
            owner,
            null_mut(),
            dacl,
            null_mut(),
        )
    };
    if code != ERROR_SUCCESS {
        return Err(std::io::Error::from_raw_os_error(code as i32));
    }
    Ok(())
}

/// Whether an administrator owns `path` (owner only).
pub(crate) fn check_path_owner(path: &Path) -> Result<(), NotAdminOnly> {
    let wide = wide(path);
    let mut owner: PSID = null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: `wide` is NUL-terminated; the out pointers are valid and the
    // descriptor is freed below.
    let code = unsafe {
        GetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION,
            &mut owner,
            null_mut(),
            null_mut(),
            null_mut(),
            &mut descriptor,
        )
    };
    owner_verdict(code, owner, descriptor, path)
}

/// A security descriptor made from SDDL, freed on drop.
struct Descriptor(PSECURITY_DESCRIPTOR);

impl Descriptor {
    fn from_sddl(sddl: &str) -> std::io::Result<Descriptor> {
        let sddl: Vec<u16> = sddl.encode_utf16().chain(Some(0)).collect();
        let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `sddl` is NUL-terminated; the descriptor is freed on drop.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                null_mut(),
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Descriptor(descriptor))
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0) };
    }
}

fn create_dir_with(path: &Path, sddl: &str) -> std::io::Result<()> {
    let descriptor = Descriptor::from_sddl(sddl)?;
    let attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.0,
        bInheritHandle: 0,
    };
    let wide = wide(path);
    // SAFETY: `wide` is NUL-terminated and `attributes` points at a valid
    // descriptor for the duration of the call.
    if unsafe { CreateDirectoryW(wide.as_ptr(), &attributes) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// On Windows the state folder's DACL is what keeps others out, and the
/// check refuses one that lets them write; reading is left as the MSI set it.
pub(crate) fn make_private(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

fn judge(
    code: u32,
    owner: PSID,
    dacl: *mut ACL,
    descriptor: PSECURITY_DESCRIPTOR,
    path: &Path,
) -> Result<(), NotAdminOnly> {
    let fail = |why: String| NotAdminOnly {
        path: path.to_path_buf(),
        why,
    };
    if code != ERROR_SUCCESS {
        return Err(fail(format!(
            "cannot be checked: {}",
            std::io::Error::from_raw_os_error(code as i32)
        )));
    }
    let verdict = (|| {
        let owner = sid_text(owner);
        if !is_admin(&owner) {
            return Err(fail(format!(
                "is owned by {owner}, not Administrators or SYSTEM"
            )));
        }
        if dacl.is_null() {
            return Err(fail("has no DACL: everyone may write it".into()));
        }
        // SAFETY: `dacl` points into the descriptor, alive until it is freed.
        let count = unsafe { (*dacl).AceCount };
        for index in 0..u32::from(count) {
            let mut ace: *mut c_void = null_mut();
            // SAFETY: `index` is below the ACE count of a valid ACL.
            if unsafe { GetAce(dacl, index, &mut ace) } == 0 {
                continue;
            }
            let header = ace as *const ACE_HEADER;
            // SAFETY: every ACE starts with an ACE_HEADER; an allowed ACE
            // has its mask after the header and its SID after the mask.
            let (kind, flags, mask, sid) = unsafe {
                let mask = *(ace as *const u8).add(4).cast::<u32>();
                let sid = (ace as *mut u8).add(8) as PSID;
                ((*header).AceType, (*header).AceFlags, mask, sid)
            };
            if kind != ACCESS_ALLOWED_ACE_TYPE || flags & INHERIT_ONLY_ACE != 0 {
                continue;
            }
            let who = sid_text(sid);
            if mask & WRITE_RIGHTS != 0 && !is_admin(&who) {
                return Err(fail(format!("is writable by {who}")));
            }
        }
        Ok(())
    })();
    // SAFETY: allocated by GetNamedSecurityInfoW or GetSecurityInfo.
    unsafe { LocalFree(descriptor) };
    verdict
}

/// A SID as `S-1-5-...`.
fn sid_text(sid: PSID) -> String {
    let mut text: *mut u16 = null_mut();
    // SAFETY: `sid` points into a live descriptor; `text` is freed below.
    if sid.is_null() || unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return "an unknown account".into();
    }
    // SAFETY: the conversion returns a NUL-terminated string.
    let len = (0..).take_while(|&i| unsafe { *text.add(i) } != 0).count();
    // SAFETY: `len` characters were just counted.
    let value = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
    // SAFETY: allocated by ConvertSidToStringSidW.
    unsafe { LocalFree(text as *mut c_void) };
    value
}

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain(Some(0)).collect()
}
