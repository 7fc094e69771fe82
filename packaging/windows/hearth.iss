; Inno Setup 6 script for Hearth: a per-user installer that needs no administrator rights.
;
; Built by `python packaging/build.py` on Windows, which runs
;   iscc /DAppVersion=<app/__init__.py's __version__> /DBundleDir=dist\Hearth /DIconFile=build\icons\hearth.ico ...
; The defaults below let the script be compiled by hand from this folder after a bundle build.
;
; Hearth itself lives in %LOCALAPPDATA%\Programs\Hearth. The person's own data does not: models, history, settings,
; logs and caches are all under %LOCALAPPDATA%\Hearth (platformdirs' user_data_dir "Hearth" without an author).
; Uninstalling keeps that folder unless the person says yes to deleting it.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef NumericVersion
  #define NumericVersion AppVersion
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\Hearth"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\icons\hearth.ico"
#endif

[Setup]
; The AppId identifies Hearth to Windows across versions: never change it, or updates install side by side.
AppId={{5C7E2D3A-9B41-4F6E-8A0D-3E1F27B96C54}
AppName=Hearth
AppVersion={#AppVersion}
AppVerName=Hearth {#AppVersion}
AppPublisher=Hearth contributors
VersionInfoVersion={#NumericVersion}
VersionInfoProductName=Hearth
VersionInfoDescription=Hearth setup
PrivilegesRequired=lowest
; {userpf} is %LOCALAPPDATA%\Programs, where per-user apps go.
DefaultDirName={userpf}\Hearth
DisableProgramGroupPage=yes
DisableDirPage=auto
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=Hearth-{#AppVersion}-windows-x64-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\Hearth.exe
UninstallDisplayName=Hearth
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; A running Hearth holds its files open: the Restart Manager asks it to close before files are replaced or removed.
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; An update replaces the bundle as a whole, so no module of the previous version is left to be loaded by mistake.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Hearth"; Filename: "{app}\Hearth.exe"; Comment: "Chat with AI models, offline"
Name: "{autodesktop}\Hearth"; Filename: "{app}\Hearth.exe"; Comment: "Chat with AI models, offline"; Tasks: desktopicon

[Run]
Filename: "{app}\Hearth.exe"; Description: "{cm:LaunchProgram,Hearth}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
Type: dirifempty; Name: "{app}"

[Code]
function UserDataDir(): String;
begin
  Result := ExpandConstant('{localappdata}\Hearth');
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  DataDir: String;
begin
  if CurUninstallStep <> usPostUninstall then
    exit;
  DataDir := UserDataDir();
  { A silent uninstall (an update script, an administrator's tool) never deletes anyone's data. }
  if UninstallSilent or not DirExists(DataDir) then
    exit;
  if MsgBox('Hearth has been removed.' + #13#10#13#10 +
            'Do you also want to delete your models, conversations and settings?' + #13#10 +
            DataDir + #13#10#13#10 +
            'Choose No to keep them: Hearth finds them again if you install it later.',
            mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
  begin
    if not DelTree(DataDir, True, True, True) then
      MsgBox('Some files in ' + DataDir + ' could not be deleted. You can delete the folder yourself.',
             mbInformation, MB_OK);
  end;
end;
