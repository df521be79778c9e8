module mom

go 1.26
