namespace RollingReboot.Cli;

/// <summary>Secrets come from the environment or from owner-only files, never from the command line.</summary>
public static class Secrets
{
    public static string ReadOwnerOnlyFile(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new UserFacingException($"{what} file {path} does not exist");
        }

        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            {
                throw new UserFacingException($"{what} file {path} is readable by group or others; run 'chmod 600 {path}' (secrets must be owner-only, as ssh requires)");
            }
        }

        return File.ReadAllText(path).TrimEnd('\r', '\n');
    }
}
