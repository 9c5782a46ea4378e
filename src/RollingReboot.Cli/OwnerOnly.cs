namespace RollingReboot.Cli;

/// <summary>
/// What rollreboot writes under its state directory names pools, hosts, VMs and their uuids: readable by its owner
/// only, as ssh keeps ~/.ssh. Directories 0700, files 0600, set at creation (no window in which others can read)
/// and tightened when an older version left them wider.
/// </summary>
internal static class OwnerOnly
{
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates <paramref name="directory"/> (and its missing parents up to and including <paramref name="stateRoot"/>)
    /// owner-only; an existing state directory or subdirectory is tightened to 0700.</summary>
    public static void Directory(string directory, string? stateRoot = null)
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(directory);
            return;
        }

        var full = Path.GetFullPath(directory);
        var root = stateRoot is null ? full : Path.GetFullPath(stateRoot);
        if (!full.StartsWith(root, StringComparison.Ordinal))
        {
            root = full;
        }

        // Parents above the state root (e.g. ~/.local/state) are created with the usual mode: they are not ours alone.
        var above = Path.GetDirectoryName(root);
        if (above is not null)
        {
            System.IO.Directory.CreateDirectory(above);
        }

        var d = root;
        while (true)
        {
            System.IO.Directory.CreateDirectory(d, DirectoryMode);
            if ((File.GetUnixFileMode(d) & ~DirectoryMode) != 0)
            {
                File.SetUnixFileMode(d, DirectoryMode);
            }

            if (d.Length >= full.Length)
            {
                break;
            }

            var next = full.IndexOf(Path.DirectorySeparatorChar, d.Length + 1);
            d = next < 0 ? full : full[..next];
        }
    }

    /// <summary>Creates the file empty and 0600 if it does not exist (Serilog and the journal then append to it).</summary>
    public static void File0600(string path)
    {
        if (OperatingSystem.IsWindows() || File.Exists(path))
        {
            if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & ~FileMode) != 0)
            {
                File.SetUnixFileMode(path, FileMode);
            }

            return;
        }

        using var _ = new FileStream(path, new FileStreamOptions
        {
            Mode = System.IO.FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = FileMode,
        });
    }
}
