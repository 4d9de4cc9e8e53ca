global using NUnit.Framework;
global using System.Runtime.InteropServices;
