using RollingReboot.Core.Run.Journal;

namespace RollingReboot.Cli;

/// <summary>An append-only journal file, flushed line by line, owner-only.</summary>
public sealed class FileJournalStore : IJournalStore
{
    private readonly Lock _lock = new();

    public FileJournalStore(string path)
    {
        Path = path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
    }

    public string Path { get; }

    public void Append(string line)
    {
        lock (_lock)
        {
            var created = !File.Exists(Path);
            using (var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(line);
                writer.Write('\n');
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }

            if (created && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }
    }

    public IReadOnlyList<string> ReadAll()
    {
        lock (_lock)
        {
            return File.Exists(Path) ? File.ReadAllLines(Path) : [];
        }
    }
}
