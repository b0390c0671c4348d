/*
 * A stand-in for bcryptprimitives.dll, for running wpkgsync.exe under Wine 8
 * in scripts/test-windows only; never shipped. Rust's standard library gets
 * its random bytes from ProcessPrng, which Wine 8's bcryptprimitives.dll does
 * not export, so the exe would not start. This one fills the buffer with
 * RtlGenRandom (advapi32's SystemFunction036), Windows' own CSPRNG.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
