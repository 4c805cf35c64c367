; OISP Sensor installer (NSIS 3, built on Linux with Debian's makensis by packaging/nsis.ts).
; Per-machine install to Program Files\OISP, Start Menu entries, optional CA trust, PATH entry,
; uninstaller that removes files, shortcuts, PATH entry and our CA, and asks before deleting captured
; data (silent /S: the data is kept). `setup.exe /S /CA` also trusts the CA in silent mode.
;
; Defines passed by nsis.ts: VERSION (x.y.z), VERSION4 (a.b.c.d), STAGE (dir with the files to install),
; OUTFILE, ICON, and WITH_WINDIVERT when WinDivert.dll + WinDivert64.sys are in STAGE.

Unicode true
Target amd64-unicode
SetCompressor /SOLID lzma
RequestExecutionLevel admin
ManifestDPIAware true

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"
!include "StrFunc.nsh"
!include "WinMessages.nsh"
${StrStr}
${UnStrRep}
${UnStrStr}

!define PRODUCT "OISP Sensor"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\OISP Sensor"
!define ENV_KEY "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
!define DASHBOARD_URL "http://127.0.0.1:7777/"

Name "${PRODUCT}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\OISP"
BrandingText "${PRODUCT} ${VERSION}"
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${VERSION4}"
VIAddVersionKey /LANG=1033 "ProductName" "${PRODUCT}"
VIAddVersionKey /LANG=1033 "CompanyName" "OISP"
VIAddVersionKey /LANG=1033 "FileDescription" "${PRODUCT} ${VERSION} Setup"
VIAddVersionKey /LANG=1033 "FileVersion" "${VERSION4}"
VIAddVersionKey /LANG=1033 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "LegalCopyright" "Apache-2.0"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_SMALLDESC
!define MUI_FINISHPAGE_SHOWREADME "$INSTDIR\README.txt"
!define MUI_FINISHPAGE_SHOWREADME_NOTCHECKED

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_LICENSE "${STAGE}\LICENSE.txt"
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

; Marks a .lnk as "Run as administrator" (SLDF_RUNAS_USER, bit 0x20 of the link flags at offset 0x15).
!macro ShortcutRunAsAdmin LNK
  Push $0
  Push $1
  FileOpen $0 "${LNK}" a
  FileSeek $0 0x15 SET
  FileReadByte $0 $1
  IntOp $1 $1 | 0x20
  FileSeek $0 0x15 SET
  FileWriteByte $0 $1
  FileClose $0
  Pop $1
  Pop $0
!macroend

Section "OISP Sensor (required)" SecMain
  SectionIn RO
  SetShellVarContext all
  SetOutPath "$INSTDIR"
  File "${STAGE}\oisp.exe"
  File "${STAGE}\README.txt"
  File "${STAGE}\LICENSE.txt"
  File "${STAGE}\THIRD-PARTY-NOTICES.txt"
!ifdef WITH_WINDIVERT
  File "${STAGE}\WinDivert.dll"
  File "${STAGE}\WinDivert64.sys"
!else
  File "${STAGE}\WINDIVERT.txt"
!endif
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateDirectory "$SMPROGRAMS\OISP"
  ; "OISP": the tray icon (oisp tray), the way a Windows user runs it; it starts the sensor if none runs.
  CreateShortcut "$SMPROGRAMS\OISP\OISP.lnk" "$INSTDIR\oisp.exe" "tray" "$INSTDIR\oisp.exe" 0 SW_SHOWMINIMIZED "" "OISP in the notification area: capture status, start/stop/pause, CA, dashboard, logs"
  CreateShortcut "$SMPROGRAMS\OISP\OISP Sensor and Dashboard.lnk" "$INSTDIR\oisp.exe" "sensor --web" "$INSTDIR\oisp.exe" 0 SW_SHOWNORMAL "" "Run the OISP sensor; its dashboard is ${DASHBOARD_URL}"
  WriteINIStr "$SMPROGRAMS\OISP\Open OISP Dashboard.url" "InternetShortcut" "URL" "${DASHBOARD_URL}"
  CreateShortcut "$SMPROGRAMS\OISP\OISP Start Capture (Administrator).lnk" "$INSTDIR\oisp.exe" "redirect --mode windivert --tls-mitm" "$INSTDIR\oisp.exe" 0 SW_SHOWNORMAL "" "Capture AI traffic on this machine with WinDivert (needs Administrator)"
  !insertmacro ShortcutRunAsAdmin "$SMPROGRAMS\OISP\OISP Start Capture (Administrator).lnk"
  CreateShortcut "$SMPROGRAMS\OISP\Install OISP CA.lnk" "$SYSDIR\cmd.exe" '/k ""$INSTDIR\oisp.exe" ca init && "$INSTDIR\oisp.exe" ca install"' "$INSTDIR\oisp.exe" 0 SW_SHOWNORMAL "" "Create the local OISP CA and trust it for your user"
  CreateShortcut "$SMPROGRAMS\OISP\Uninstall OISP Sensor.lnk" "$INSTDIR\uninstall.exe"

  ; Apps & Features entry (winget's ProductCode is this key's name).
  SetRegView 64
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "OISP"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\oisp.exe"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "EstimatedSize" $0

  Call AddToPath
SectionEnd

Section /o "Trust the OISP CA for this user (HTTPS capture)" SecCA
  DetailPrint "Creating and trusting the OISP CA"
  ExecWait '"$INSTDIR\oisp.exe" ca init' $0
  ExecWait '"$INSTDIR\oisp.exe" ca install' $1
  ${If} $1 != 0
    DetailPrint "oisp ca install failed ($1): run 'oisp ca install' later"
  ${EndIf}
SectionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecMain} "oisp.exe, Start Menu entries and the PATH entry."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecCA} "Create the local OISP CA and add it to your trusted roots so HTTPS calls to AI APIs can be decoded. Removed again by the uninstaller."
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Function .onInit
  SetRegView 64
  ; `setup.exe /S /CA` selects the CA section in silent installs.
  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/CA" $1
  ${IfNot} ${Errors}
    SectionGetFlags ${SecCA} $2
    IntOp $2 $2 | ${SF_SELECTED}
    SectionSetFlags ${SecCA} $2
  ${EndIf}
FunctionEnd

; Appends $INSTDIR to the machine PATH unless it is there. NSIS strings hold 1024 characters: a PATH that
; long is left alone (writing it back would truncate it) and the user is told to add the folder.
Function AddToPath
  ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
  StrLen $1 $0
  ${If} $1 >= 1000
    DetailPrint "PATH is too long to edit safely: add $INSTDIR to PATH yourself"
    Return
  ${EndIf}
  ${StrStr} $2 "$0;" "$INSTDIR;"
  ${If} $2 != ""
    Return
  ${EndIf}
  ${If} $0 == ""
    StrCpy $0 "$INSTDIR"
  ${Else}
    StrCpy $0 "$0;$INSTDIR"
  ${EndIf}
  WriteRegExpandStr HKLM "${ENV_KEY}" "Path" "$0"
  SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=2000
FunctionEnd

Function un.RemoveFromPath
  ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
  StrLen $1 $0
  ${If} $1 >= 1000
    Return
  ${EndIf}
  ${UnStrStr} $2 "$0;" "$INSTDIR;"
  ${If} $2 == ""
    Return
  ${EndIf}
  ; Remove the entry wherever it is: wrap in separators, replace, unwrap.
  ${UnStrRep} $0 ";$0;" ";$INSTDIR;" ";"
  StrCpy $0 $0 "" 1
  StrCpy $0 $0 -1
  WriteRegExpandStr HKLM "${ENV_KEY}" "Path" "$0"
  SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=2000
FunctionEnd

Function un.onInit
  SetRegView 64
FunctionEnd

Section "Uninstall"
  SetShellVarContext all
  ; Our CA out of the trust store first: it needs the CA files in the data directory to know which one.
  IfFileExists "$INSTDIR\oisp.exe" 0 +2
    ExecWait '"$INSTDIR\oisp.exe" ca uninstall' $0

  Delete "$INSTDIR\oisp.exe"
  Delete "$INSTDIR\README.txt"
  Delete "$INSTDIR\LICENSE.txt"
  Delete "$INSTDIR\THIRD-PARTY-NOTICES.txt"
  Delete "$INSTDIR\WINDIVERT.txt"
  Delete "$INSTDIR\WinDivert.dll"
  Delete "$INSTDIR\WinDivert64.sys"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"

  Delete "$SMPROGRAMS\OISP\OISP.lnk"
  Delete "$SMPROGRAMS\OISP\OISP Sensor and Dashboard.lnk"
  Delete "$SMPROGRAMS\OISP\Open OISP Dashboard.url"
  Delete "$SMPROGRAMS\OISP\OISP Start Capture (Administrator).lnk"
  Delete "$SMPROGRAMS\OISP\Install OISP CA.lnk"
  Delete "$SMPROGRAMS\OISP\Uninstall OISP Sensor.lnk"
  RMDir "$SMPROGRAMS\OISP"

  Call un.RemoveFromPath
  DeleteRegKey HKLM "${UNINSTALL_KEY}"

  ; "Start with Windows" (the tray's per-user Run value) of the user uninstalling.
  DeleteRegValue HKCU "Software\Microsoft\Windows\CurrentVersion\Run" "OISP"

  ; Captured data (events database, CA, settings) lives per user in %LOCALAPPDATA%\OISP. Ask; default
  ; and silent mode keep it.
  SetShellVarContext current
  IfFileExists "$LOCALAPPDATA\OISP\*.*" 0 done
    IfSilent done
    MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON2 "Also delete the captured data (events database, CA, settings) in $LOCALAPPDATA\OISP?" IDNO done
      RMDir /r "$LOCALAPPDATA\OISP"
  done:
SectionEnd
