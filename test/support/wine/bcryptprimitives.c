/* Wine 8.0 (Debian 12) has no ProcessPrng in bcryptprimitives.dll, which Bun's Windows runtime imports.
 * This stand-in exports it on top of RtlGenRandom (advapi32!SystemFunction036) so oisp.exe runs under Wine
 * in CI. Never shipped: real Windows has the genuine DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
  while (length > 0) {
    ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    length -= chunk;
  }
  return TRUE;
}
